// A frontend's use of the API through a client generated from openapi.json
// (openapi-typescript + openapi-fetch): typechecked with `tsc --strict` by tests/test_clients.py.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Problem = components["schemas"]["Problem"];
type Job = components["schemas"]["JobOut"];

const client = createClient<paths>({ baseUrl: "http://localhost:8000" });

export function describe(problem: Problem): string {
  const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  return [`${problem.status} ${problem.code}: ${problem.title}`, ...fields].join("\n");
}

export async function runReport(token: string): Promise<Job | undefined> {
  const headers = { Authorization: `Bearer ${token}` };
  const { data, error, response } = await client.POST("/api/v1/reports/jobs", {
    headers: { ...headers, "Idempotency-Key": "monthly-progress-2026-11" },
    body: {
      reportType: "learner-progress",
      format: "xlsx",
      parameters: {
        dateRange: { preset: "custom", from: "2026-01-01", to: "2026-06-30" },
        statuses: ["in-progress", "completed"],
      },
    },
  });
  if (error) {
    const code: string = error.code;
    if (code === "validation-failed") {
      console.error(describe(error), error.errors?.[0]?.field);
    }
    return undefined;
  }
  const location: string | null = response.headers.get("Location");
  let job: Job = data;
  while (job.status === "queued" || job.status === "running") {
    const polled = await client.GET("/api/v1/reports/jobs/{job_id}", {
      headers,
      params: { path: { job_id: job.id } },
    });
    if (polled.error) {
      console.error(polled.error.code, polled.error.detail ?? "", location);
      return undefined;
    }
    job = polled.data;
  }
  console.log(job.result?.downloadUrl, job.progress.percent);
  return job;
}

export async function runTemplate(token: string, templateId: string): Promise<string> {
  const { data, error } = await client.POST("/api/v1/reports/jobs", {
    headers: { Authorization: `Bearer ${token}` },
    body: { templateId, format: "pdf" },
  });
  return error ? error.code : data.id;
}

export async function typeCodes(): Promise<string[]> {
  const { data, error } = await client.GET("/api/v1/reports/metadata/report-types", {});
  if (error) {
    return [error.code];
  }
  return data.map((t) => t.key);
}
