// An error of the server's stores (tokens, mounts) that carries the HTTP
// status Vault answers it with; its message is safe to show the caller.

export class StatusError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}
