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

// Exhaustive switches: a status or an error code added to the contract fails this build
// (`never`) until the page handles it.
export type JobStatus = Job["status"];
export type ProblemCode = Problem["code"];

export function statusBadge(status: JobStatus): { label: string; busy: boolean } {
  switch (status) {
    case "queued":
      return { label: "Waiting", busy: true };
    case "running":
      return { label: "Running", busy: true };
    case "completed":
      return { label: "Ready", busy: false };
    case "failed":
      return { label: "Failed", busy: false };
    case "cancelled":
      return { label: "Cancelled", busy: false };
    case "expired":
      return { label: "Expired", busy: false };
    default: {
      const unhandled: never = status;
      throw new Error(`unknown job status ${String(unhandled)}`);
    }
  }
}

export type Reaction = "sign-in" | "fix-form" | "not-allowed" | "gone" | "reload" | "wait";

export function reactTo(problem: Problem): Reaction {
  const code: ProblemCode = problem.code;
  switch (code) {
    case "authentication-required":
      return "sign-in";
    case "validation-failed":
    case "request-invalid":
    case "payload-too-large":
    case "media-type-unsupported":
    case "request-header-too-large":
    case "filter-not-allowed":
      return "fix-form";
    case "permission-denied":
    case "admin-required":
    case "scope-exceeded":
    case "report-type-not-allowed":
    case "schedule-recipient-forbidden":
    case "job-access-revoked":
    case "template-not-owned":
    case "template-visibility-not-allowed":
    case "schedule-owner-unavailable":
    case "event-user-mismatch":
      return "not-allowed";
    case "resource-not-found":
    case "route-not-found":
    case "method-not-allowed":
    case "resource-gone":
    case "report-type-not-found":
    case "lookup-category-not-found":
    case "lookup-value-not-found":
    case "job-not-found":
    case "job-expired":
    case "job-file-missing":
    case "template-not-found":
    case "template-version-not-found":
    case "schedule-not-found":
    case "delivery-not-found":
    case "delivery-link-invalid":
    case "delivery-link-expired":
    case "delivery-link-revoked":
    case "webhook-not-found":
    case "unsubscribe-link-invalid":
    case "recipient-not-found":
      return "gone";
    case "resource-conflict":
    case "precondition-failed":
    case "template-version-mismatch":
    case "lookup-value-structural":
    case "job-not-cancellable":
    case "job-not-retryable":
    case "idempotency-key-reused":
    case "template-archived":
    case "template-in-use":
    case "schedule-ended":
    case "schedule-broken":
    case "schedule-slot-taken":
    case "delivery-not-resendable":
    case "webhook-in-use":
    case "webhook-unsigned":
    case "job-rows-unavailable":
    case "preview-too-large":
    case "range-not-satisfiable":
      return "reload";
    case "job-not-ready":
    case "job-quota-exceeded":
    case "preview-rate-exceeded":
    case "idempotency-key-in-use":
    case "rate-limit-exceeded":
    case "server-error":
    case "service-unavailable":
    case "service-busy":
    case "database-unavailable":
    case "queue-unavailable":
    case "audit-unavailable":
      return "wait";
    default: {
      const unhandled: never = code;
      throw new Error(`unknown error code ${String(unhandled)}`);
    }
  }
}

export async function cancelAndExplain(token: string, jobId: string): Promise<string> {
  const { data, error } = await client.POST("/api/v1/reports/jobs/{job_id}/cancel", {
    headers: { Authorization: `Bearer ${token}` },
    params: { path: { job_id: jobId } },
  });
  if (error) {
    return `${reactTo(error)}: ${error.title}`;
  }
  return statusBadge(data.status).label;
}
