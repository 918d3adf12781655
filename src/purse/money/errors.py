"""Error codes of the money domain."""

from purse.errors import RequestError


class AmountInvalid(RequestError):
    code = "amount_invalid"
    status = 422
    title = "Amount not valid"
    detail = "The amount {value!r} is not a decimal number."
    next_step = "Write the amount with digits and at most one decimal point, like 12.50."


class AmountScaleExceeded(RequestError):
    code = "amount_scale_exceeded"
    status = 422
    title = "Too many decimal places"
    detail = "{asset} amounts have at most {scale} decimal place; {value!r} has more."
    detail_plural = "{asset} amounts have at most {scale} decimal places; {value!r} has more."
    count_field = "scale"
    next_step = "Round the amount to {scale} decimal place."
    next_step_plural = "Round the amount to {scale} decimal places."


class AmountNotPositive(RequestError):
    code = "amount_not_positive"
    status = 422
    title = "Amount not above zero"
    detail = "The amount must be greater than zero."
    next_step = "Enter an amount above zero."


class AmountOutOfRange(RequestError):
    code = "amount_out_of_range"
    status = 422
    title = "Amount too large"
    detail = "The amount {value!r} is too large."


class AssetUnknown(RequestError):
    code = "asset_unknown"
    status = 422
    title = "Unknown asset"
    detail = "{asset!r} is not an asset this wallet knows."
