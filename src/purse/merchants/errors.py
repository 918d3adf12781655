"""Merchants' error codes: what a merchant's staff or server can get wrong."""

from __future__ import annotations

from purse.errors import RequestError


class MerchantError(RequestError):
    status = 422


class MerchantNotFound(MerchantError):
    code = "merchant_not_found"
    status = 404
    title = "Merchant not found"
    detail = "No merchant you work for has this id."


class MerchantPermissionDenied(MerchantError):
    code = "merchant_permission_denied"
    status = 403
    title = "Not allowed for your role"
    detail = "Your role at this merchant does not allow this."
    next_step = "Ask an owner of the merchant to do it, or to give you a role that may."


class MerchantNameInvalid(MerchantError):
    code = "merchant_name_invalid"
    title = "Name not valid"
    detail = "A name needs 1 to {length_max} characters, with no control characters."


class ApiKeyInvalid(MerchantError):
    code = "api_key_invalid"
    status = 401
    title = "API key not valid"
    detail = "The API key is missing, unknown, revoked or past its end."
    next_step = "Send a current secret key as 'Authorization: Bearer sk_...'."


class ApiKeyScopeMissing(MerchantError):
    code = "api_key_scope_missing"
    status = 403
    title = "API key not allowed to do this"
    detail = "This API key does not have the '{scope}' scope."
    next_step = "Use a key with that scope, or make one on the dashboard."


class ApiKeyNotFound(MerchantError):
    code = "api_key_not_found"
    status = 404
    title = "API key not found"
    detail = "This merchant has no API key with this id."


class ApiKeyScopesInvalid(MerchantError):
    code = "api_key_scopes_invalid"
    title = "Scopes not valid"
    detail = "Choose one or more of payments, refunds and read, each once."


class ApiKeyEnded(MerchantError):
    code = "api_key_ended"
    status = 409
    title = "API key already ended"
    detail = "This API key has been revoked or rolled already."


class MerchantMemberNotFound(MerchantError):
    code = "merchant_member_not_found"
    status = 404
    title = "Team member not found"
    detail = "This person is not on the merchant's team."


class MerchantMemberExists(MerchantError):
    code = "merchant_member_exists"
    status = 409
    title = "Already on the team"
    detail = "This person is on the merchant's team already."
    next_step = "Change their role instead."


class MerchantOwnerRequired(MerchantError):
    code = "merchant_owner_required"
    status = 409
    title = "An owner is needed"
    detail = "A merchant keeps at least one owner."
    next_step = "Make someone else an owner first."


class PaymentNotFound(MerchantError):
    code = "payment_not_found"
    status = 404
    title = "Payment not found"
    detail = "This merchant has no payment with this reference in this mode."


class PaymentMetadataInvalid(MerchantError):
    code = "payment_metadata_invalid"
    title = "Metadata not valid"
    detail = (
        "Metadata is at most 20 keys of letters, digits, '_', '.' and '-', "
        "each with a text value of at most 500 characters."
    )


class PaymentNotApprovable(MerchantError):
    code = "payment_not_approvable"
    status = 409
    title = "Payment can no longer be approved"
    detail = "This payment was approved already, or its time to approve it ran out."
    next_step = "Go back to the shop and start the payment again."


class PaymentNotAuthorized(MerchantError):
    code = "payment_not_authorized"
    status = 409
    title = "Payment not approved yet"
    detail = "The customer has not approved this payment, so there is nothing to take."


class PaymentAlreadyCaptured(MerchantError):
    code = "payment_already_captured"
    status = 409
    title = "Payment already captured"
    detail = "The money for this payment was taken already; it cannot be captured or voided."
    next_step = "To give money back, refund the payment."


class PaymentVoided(MerchantError):
    code = "payment_voided"
    status = 409
    title = "Payment cancelled"
    detail = "The merchant cancelled this payment and released the money held for it."


class PaymentAuthorizationExpired(MerchantError):
    code = "payment_authorization_expired"
    status = 409
    title = "Authorization ended"
    detail = "The hold ran out before the merchant took the money, so it was released."
    next_step = "The merchant can ask the customer to pay again."


class CaptureExceedsAuthorization(MerchantError):
    code = "capture_exceeds_authorization"
    title = "More than authorized"
    detail = "A capture can take at most the amount the customer authorized."


class FulfilmentReferenceRequired(MerchantError):
    code = "fulfilment_reference_required"
    title = "Fulfilment reference needed"
    detail = (
        "This merchant takes no money without fulfilment: a capture must name the "
        "shipment or the service delivered."
    )
    next_step = "Send 'fulfilment_reference' with the capture."


class PaymentCurrencyMismatch(MerchantError):
    code = "payment_currency_mismatch"
    title = "Wrong currency"
    detail = "The amount must be in the payment's currency, {currency}."


class PaymentNotCaptured(MerchantError):
    code = "payment_not_captured"
    status = 409
    title = "Nothing to refund"
    detail = "No money was taken for this payment, so there is nothing to refund."
    next_step = "To release a hold, void the payment instead."


class RefundExceedsCaptured(MerchantError):
    code = "refund_exceeds_captured"
    title = "More than was taken"
    detail = "A refund can return at most what was captured and not refunded yet."


class RefundExceedsBalance(MerchantError):
    code = "refund_exceeds_balance"
    status = 409
    title = "Settlement balance too low"
    detail = "The merchant's settlement balance is too low to pay this refund."
    next_step = "Wait for new payments to settle, or refund less."


class WebhookEndpointNotFound(MerchantError):
    code = "webhook_endpoint_not_found"
    status = 404
    title = "Webhook endpoint not found"
    detail = "This merchant has no webhook endpoint with this id."


class WebhookDeliveryNotFound(MerchantError):
    code = "webhook_delivery_not_found"
    status = 404
    title = "Webhook delivery not found"
    detail = "This merchant has no webhook delivery with this id."


class WebhookUrlInvalid(MerchantError):
    code = "webhook_url_invalid"
    title = "Webhook URL not valid"
    detail = "A webhook URL is an http or https address with a host, and no user name or password."


class WebhookUrlNotAllowed(MerchantError):
    code = "webhook_url_not_allowed"
    title = "Webhook URL not allowed"
    detail = (
        "This URL leads to a loopback, private or link-local address, or to none: "
        "purse only calls servers on the public internet."
    )
    next_step = "Use your server's public https address."


class WebhookEventTypesInvalid(MerchantError):
    code = "webhook_event_types_invalid"
    title = "Event types not valid"
    detail = "Choose one or more of {known}, each once."


class RefundReasonInvalid(MerchantError):
    code = "refund_reason_invalid"
    title = "Reason not valid"
    detail = "Choose one of requested_by_customer, duplicate, not_fulfilled, fraudulent and other."
