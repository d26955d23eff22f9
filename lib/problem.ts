// Every error either service answers is one of these, turned into an RFC 9457 problem document by
// the error boundary in lib/http.ts. Kept apart from Koa, so that token and input checks need none.
export class Problem extends Error {
  readonly status: number;
  readonly title: string;
  readonly headers: Record<string, string>;

  constructor(status: number, title: string, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.title = title;
    this.headers = headers;
  }
}

export const badRequest = (detail: string) => new Problem(400, 'Bad Request', detail);
export const unprocessable = (detail: string) => new Problem(422, 'Invalid input', detail);
export const unauthorized = (detail: string) => new Problem(401, 'Unauthorized', detail);
export const forbidden = (detail: string) => new Problem(403, 'Forbidden', detail);
export const notFound = (detail: string) => new Problem(404, 'Not Found', detail);
export const conflict = (detail: string) => new Problem(409, 'Conflict', detail);
export const tooManyRequests = (detail: string, retryAfterSeconds: number) =>
  new Problem(429, 'Too Many Requests', detail, { 'Retry-After': String(retryAfterSeconds) });
