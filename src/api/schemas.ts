/** JSON schemas of the web API's login and invite requests and of recording ids; the proxy validates those routes by them. */

/** `POST /webapi/ssh/certs`. */
export const sshLoginSchema = {
  type: 'object',
  required: ['user', 'password', 'publicKey'],
  additionalProperties: false,
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 64 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
    otp: { type: 'string', maxLength: 16 },
    publicKey: { type: 'string', minLength: 1, maxLength: 8192 },
    ttlMs: { type: 'integer', minimum: 60_000, maximum: 366 * 86_400_000 },
  },
} as const;

/** `POST /webapi/invites/:token`. */
export const acceptInviteSchema = {
  type: 'object',
  required: ['password'],
  additionalProperties: false,
  properties: {
    password: { type: 'string', minLength: 1, maxLength: 1024 },
    totpSecret: { type: 'string', minLength: 16, maxLength: 128 },
    otp: { type: 'string', maxLength: 16 },
  },
} as const;

/** The `:token` path parameter of invite routes. */
export const inviteParamsSchema = {
  type: 'object',
  required: ['token'],
  properties: { token: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' } },
} as const;

/** The `:id` path parameter of recording routes: a UUID. */
export const recordingParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } },
} as const;
