/**
 * JSON schemas of the web UI's request bodies (web login, account) and of the audit page's
 * query; the proxy validates those routes by them. Routes without a body or with a query
 * of their own (nodes, sessions, recordings) are checked in their handlers or by auth.
 */

const password = { type: 'string', minLength: 1, maxLength: 1024 } as const;
const otp = { type: 'string', maxLength: 16 } as const;

/** `POST /webapi/sessions/web`: a web login. */
export const webLoginSchema = {
  type: 'object', required: ['user', 'password'], additionalProperties: false,
  properties: { user: { type: 'string', minLength: 1, maxLength: 64 }, password, otp },
} as const;

/** `POST /webapi/account/password`. */
export const changePasswordSchema = {
  type: 'object', required: ['currentPassword', 'newPassword'], additionalProperties: false,
  properties: { currentPassword: password, otp, newPassword: password },
} as const;

/** `POST /webapi/account/totp`: begin a re-enrolment. */
export const beginTotpSchema = {
  type: 'object', required: ['currentPassword'], additionalProperties: false,
  properties: { currentPassword: password, otp },
} as const;

/** `PUT /webapi/account/totp`: finish it with a code of the new secret. */
export const finishTotpSchema = {
  type: 'object', required: ['enrolId', 'otp'], additionalProperties: false,
  properties: { enrolId: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' }, otp: { type: 'string', pattern: '^[0-9]{6}$' } },
} as const;

/** `GET /webapi/audit` query. */
export const auditQuerySchema = {
  type: 'object', additionalProperties: false,
  properties: {
    since: { type: 'string', maxLength: 64 },
    type: { type: 'string', maxLength: 64 },
    user: { type: 'string', maxLength: 64 },
    limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
  },
} as const;
