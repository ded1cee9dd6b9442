// One error family for src/iam, with stable codes. IamFieldError is a caller
// mistake (the engine and the broker answer 400 naming the field); CloudError
// is a cloud refusing or failing (the broker retries the retryable ones).

// Messages quote what the caller sent: bounded, so an oversized input cannot
// flood a response or a log line.
const MAX_FIELD_CHARS = 160;
const MAX_MESSAGE_CHARS = 600;

/** Cuts the middle (where a quoted value sits), keeping the head and the reason at the end. */
function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  const tail = Math.floor(max / 3);
  return `${text.slice(0, max - tail)}…(${text.length - max} characters cut)…${text.slice(text.length - tail)}`;
}

export class IamFieldError extends Error {
  readonly code = 'ERR_IAM_INVALID' as const;
  /** The field path, for example `iam.aws.role_arn` or `read[2]`. */
  readonly field: string;

  constructor(field: string, message: string) {
    const f = bounded(field, MAX_FIELD_CHARS);
    super(`invalid ${f}: ${bounded(message, MAX_MESSAGE_CHARS)}`);
    this.name = 'IamFieldError';
    this.field = f;
  }
}

export type CloudErrorCode =
  | 'ERR_CLOUD_DENIED' // the cloud refused the identity or the request (4xx): not retried
  | 'ERR_CLOUD_UNAVAILABLE' // network, 5xx, throttling: retried with backoff
  | 'ERR_CLOUD_LIMIT'; // a cloud quota was hit (policy size, object count)

export class CloudError extends Error {
  readonly code: CloudErrorCode;
  readonly cloud: string;
  readonly retryable: boolean;

  constructor(cloud: string, code: CloudErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(`${cloud}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CloudError';
    this.code = code;
    this.cloud = cloud;
    this.retryable = code === 'ERR_CLOUD_UNAVAILABLE';
  }
}
