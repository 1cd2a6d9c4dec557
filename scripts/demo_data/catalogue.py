"""The demo organisation's fixed vocabulary: departments, teams, the course catalogue, names and
how enrollments end; and `parse_scale` for the `--scale` option."""

from __future__ import annotations

import re
from typing import Any

DEMO_DOMAIN = "demo.example"
DEMO_ACCOUNTS: dict[str, str] = {
    "admin": f"admin@{DEMO_DOMAIN}",
    "manager": f"manager@{DEMO_DOMAIN}",
    "instructor": f"instructor@{DEMO_DOMAIN}",
    "learner": f"learner@{DEMO_DOMAIN}",
}
SCALES = {"tiny": 300, "small": 1_000, "medium": 100_000, "large": 1_000_000}

Doc = dict[str, Any]

# (code, name, parent code)
DEPARTMENTS: list[tuple[str, str, str | None]] = [
    ("ORG", "Organisation", None),
    ("ENG", "Engineering", "ORG"),
    ("ENG-PLAT", "Platform", "ENG"),
    ("ENG-PROD", "Product Engineering", "ENG"),
    ("ENG-DATA", "Data & Analytics", "ENG"),
    ("ENG-SEC", "Security", "ENG"),
    ("SALES", "Sales", "ORG"),
    ("SALES-EMEA", "EMEA", "SALES"),
    ("SALES-AMER", "Americas", "SALES"),
    ("SALES-APAC", "APAC", "SALES"),
    ("CS", "Customer Success", "ORG"),
    ("CS-SUP", "Support", "CS"),
    ("CS-ONB", "Onboarding", "CS"),
    ("OPS", "Operations", "ORG"),
    ("OPS-FIN", "Finance", "OPS"),
    ("OPS-HR", "People", "OPS"),
    ("OPS-LEG", "Legal", "OPS"),
    ("MKT", "Marketing", "ORG"),
]
# Departments people work in (leaf teams), with a relative headcount weight.
TEAMS: list[tuple[str, int]] = [
    ("ENG-PLAT", 8), ("ENG-PROD", 14), ("ENG-DATA", 6), ("ENG-SEC", 3), ("SALES-EMEA", 9),
    ("SALES-AMER", 10), ("SALES-APAC", 5), ("CS-SUP", 9), ("CS-ONB", 4), ("OPS-FIN", 3),
    ("OPS-HR", 3), ("OPS-LEG", 2), ("MKT", 5),
]  # fmt: skip

# (category, code prefix, mandatory, titles)
CATALOGUE: list[tuple[str, str, bool, list[str]]] = [
    ("compliance", "CMP", True, [
        "Information Security Awareness", "Data Protection and GDPR", "Anti-Bribery and Corruption",
        "Code of Conduct", "Workplace Health and Safety",
    ]),
    ("engineering", "ENG", False, [
        "Python Fundamentals", "Kubernetes in Production", "Secure Coding Practices",
        "Observability with OpenTelemetry", "SQL for Analysts", "Designing REST APIs",
        "Incident Response for Engineers", "Cloud Cost Management",
    ]),
    ("sales", "SAL", False, [
        "Consultative Selling", "Negotiation Essentials", "Pipeline Management", "Product Demos that Convert",
    ]),
    ("leadership", "LDR", False, [
        "First-time Manager", "Giving Feedback", "Running Effective 1:1s", "Hiring Without Bias",
    ]),
    ("customer-success", "CSX", False, [
        "De-escalating Difficult Conversations", "Onboarding Playbook", "Writing Great Help Articles",
    ]),
    ("productivity", "PRD", False, [
        "Time Management", "Presenting with Confidence", "Spreadsheet Skills", "Remote Collaboration",
    ]),
]  # fmt: skip
LEVELS = ["", "Intermediate ", "Advanced ", "Masterclass: "]

FIRST_NAMES = [
    "Ada", "Alan", "Amara", "Amelia", "Andrea", "Anika", "Arjun", "Ava", "Ben", "Bianca",
    "Carlos", "Chen", "Chloe", "Daniel", "David", "Diego", "Elena", "Elif", "Emma", "Ethan",
    "Farah", "Fatima", "Felix", "Finn", "Grace", "Hana", "Hannah", "Hugo", "Ines", "Isaac",
    "Isabel", "Ivan", "Jack", "James", "Jana", "Javier", "Julia", "Kai", "Karim", "Kenji",
    "Lara", "Laura", "Leila", "Leo", "Liam", "Lina", "Lucas", "Luca", "Maria", "Mateo", "Maya",
    "Mei", "Mia", "Mohammed", "Nadia", "Naomi", "Nina", "Noah", "Nora", "Oliver", "Omar",
    "Oscar", "Paula", "Pedro", "Priya", "Rafael", "Rania", "Ravi", "Rosa", "Ruth", "Sam",
    "Sara", "Sofia", "Sven", "Tariq", "Thomas", "Tom", "Valentina", "Victor", "Wei", "Yara",
    "Yusuf", "Zara", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Abbott", "Adeyemi", "Ahmed", "Almeida", "Andersson", "Bauer", "Becker", "Bianchi",
    "Brown", "Castro", "Chen", "Costa", "Cruz", "Dubois", "Edwards", "Fernandez", "Fischer",
    "Garcia", "Gomez", "Green", "Gupta", "Hansen", "Haddad", "Hughes", "Ibrahim", "Ito",
    "Jansen", "Johnson", "Kaur", "Khan", "Kim", "Kowalski", "Larsen", "Lee", "Lopez", "Martin",
    "Meyer", "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel",
    "Perez", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Sousa",
    "Suzuki", "Tanaka", "Taylor", "Thompson", "Walker", "Wang", "Weber", "Williams", "Wilson",
    "Wong", "Yilmaz", "Zhang",
]  # fmt: skip

STATUS_WEIGHTS = {"completed": 44, "in-progress": 24, "enrolled": 12, "failed": 7, "withdrawn": 13}
HISTORY_DAYS = 540


def parse_scale(value: str) -> int:
    """`small`, `medium`, `large`, `tiny` or a number of enrollments (`250000`, `250k`, `1m`)."""
    key = value.strip().lower()
    if key in SCALES:
        return SCALES[key]
    match = re.fullmatch(r"(\d+)(k|m)?(-enrollments)?", key.replace("_", ""))
    if not match:
        raise ValueError(f"scale must be one of {', '.join(SCALES)} or a number of enrollments")
    n = int(match.group(1)) * {None: 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    if n < 50:
        raise ValueError("scale must be at least 50 enrollments")
    return n
