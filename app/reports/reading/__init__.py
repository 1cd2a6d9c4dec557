"""The read engine: how a report's rows come out of MongoDB.

A report type describes its read (`query.Plan`: an aggregation the server reduces, or a
`query.FactRead`, one indexed read of a fact collection joined and ordered in the worker); this
package runs it. It sits below the report types and knows none of them.
"""
