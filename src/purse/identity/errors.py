"""Error codes of the identity domain."""

from __future__ import annotations

from purse.errors import RequestError


class PasswordTooShort(RequestError):
    code = "password_too_short"
    status = 422
    title = "Password too short"
    detail = "The password needs at least {length_min} character; 15 or more is better."
    detail_plural = "The password needs at least {length_min} characters; 15 or more is better."
    count_field = "length_min"


class PasswordTooLong(RequestError):
    code = "password_too_long"
    status = 422
    title = "Password too long"
    detail = "The password may have at most {length_max} character."
    detail_plural = "The password may have at most {length_max} characters."
    count_field = "length_max"


class PasswordBlocklisted(RequestError):
    code = "password_blocklisted"
    status = 422
    title = "Password too common"
    detail = "This password is among the most common or leaked ones. Choose another."


class PasswordTooWeak(RequestError):
    code = "password_too_weak"
    status = 422
    title = "Password too easy to guess"
    detail = "This password is too easy to guess, for example from your name, phone or email."


class HandleInvalid(RequestError):
    code = "handle_invalid"
    status = 422
    title = "Handle not valid"
    detail = (
        "A handle has 3 to 32 lower-case letters, digits or underscores, starting with a letter."
    )


class HandleTaken(RequestError):
    code = "handle_taken"
    status = 409
    title = "Handle taken"
    detail = "This handle is taken. Choose another."


class PhoneInvalid(RequestError):
    code = "phone_invalid"
    status = 422
    title = "Phone number not valid"
    detail = "This is not a valid phone number. Include the country code, e.g. +86."


class EmailInvalid(RequestError):
    code = "email_invalid"
    status = 422
    title = "Email address not valid"
    detail = "This is not a valid email address."


class ContactRequired(RequestError):
    code = "contact_required"
    status = 422
    title = "Contact required"
    detail = "Give a phone number, an email address, or both."


class DisplayNameInvalid(RequestError):
    code = "display_name_invalid"
    status = 422
    title = "Display name not valid"
    detail = "The display name needs 1 to 64 characters."


class InvalidCredentials(RequestError):
    code = "invalid_credentials"
    status = 401
    title = "Sign-in failed"
    detail = (
        "The sign-in details are not right, or the account is temporarily locked. "
        "If you were locked out, check your messages."
    )


class LoginThrottled(RequestError):
    code = "login_throttled"
    status = 429
    title = "Too many sign-in attempts"
    detail = "Too many attempts. Wait {retry_after_seconds} second and try again."
    detail_plural = "Too many attempts. Wait {retry_after_seconds} seconds and try again."
    count_field = "retry_after_seconds"
    retryable = True


class CodeInvalid(RequestError):
    code = "code_invalid"
    status = 422
    title = "Code not valid"
    detail = "The code is not right, has expired, or was already used. Ask for a new one."


class CodeAttemptsExceeded(RequestError):
    code = "code_attempts_exceeded"
    status = 429
    title = "Too many wrong codes"
    detail = "Too many wrong codes. Wait until the code expires, then ask for a new one."


class CodeSendThrottled(RequestError):
    code = "code_send_throttled"
    status = 429
    title = "Code sent recently"
    detail = "A code was sent a moment ago. Wait {retry_after_seconds} second to ask again."
    detail_plural = "A code was sent a moment ago. Wait {retry_after_seconds} seconds to ask again."
    count_field = "retry_after_seconds"
    retryable = True


class ContactTaken(RequestError):
    code = "contact_taken"
    status = 409
    title = "Contact already in use"
    detail = "This phone number or email address already belongs to an account."


class RoleInvalid(RequestError):
    code = "role_invalid"
    status = 422
    title = "Role not valid"
    detail = "The role must be one of: {roles}."


class SessionInvalid(RequestError):
    code = "session_invalid"
    status = 401
    title = "Not signed in"
    detail = "You are not signed in, or your session has ended. Sign in again."


class SessionNotFound(RequestError):
    code = "session_not_found"
    status = 404
    title = "Session not found"
    detail = "There is no such session."


class SecondFactorRequired(RequestError):
    code = "second_factor_required"
    status = 401
    title = "Second factor required"
    detail = "Enter the code from your authenticator app, or a recovery code."


class SecondFactorInvalid(RequestError):
    code = "second_factor_invalid"
    status = 401
    title = "Second factor not accepted"
    detail = "The authenticator or recovery code is not right, or was already used."


class StepUpRequired(RequestError):
    code = "step_up_required"
    status = 403
    title = "Confirmation needed"
    detail = "For your security, confirm your password (and authenticator code) first."


class TotpAlreadyEnabled(RequestError):
    code = "totp_already_enabled"
    status = 409
    title = "Two-factor authentication already on"
    detail = "Two-factor authentication is already on."


class TotpNotEnabled(RequestError):
    code = "totp_not_enabled"
    status = 409
    title = "Two-factor authentication not on"
    detail = "Two-factor authentication is not on."


class TotpEnrolmentMissing(RequestError):
    code = "totp_enrolment_missing"
    status = 409
    title = "Authenticator setup not started"
    detail = "Start setting up the authenticator app first."


class PermissionDenied(RequestError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"
    detail = "You do not have permission to do this."


class UserNotFound(RequestError):
    code = "user_not_found"
    status = 404
    title = "User not found"
    detail = "There is no such user."
