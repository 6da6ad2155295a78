"""The operator's bearer token, which guards ``/v1/operator``.

The operator API is off unless ``SAUTIKIT_OPERATOR_TOKEN`` is set: then every operator
path answers 404, exactly as a path that does not exist, so an instance without a token
does not even reveal that the API is there. With a token, a request must carry
``Authorization: Bearer <token>``; anything else answers 401 ``operator.invalid_token``.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sautikit.api.deps import api_context
from sautikit.api.errors import ApiError

__all__ = ["require_operator"]


def _digest(value: str) -> bytes:
    # Comparing digests keeps the comparison's time independent of the token's length too.
    return hashlib.sha256(value.encode()).digest()


OPERATOR_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="operator",
    description="The operator token (`SAUTIKIT_OPERATOR_TOKEN`).",
)


async def require_operator(
    request: Request,
    _declared: HTTPAuthorizationCredentials | None = Depends(OPERATOR_SCHEME),
) -> None:
    """A dependency: the request carries the operator token, or it is refused."""
    token = api_context(request).settings.operator_token.get_secret_value()
    if not token:
        raise ApiError(404, "not_found", "Not Found")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    matches = hmac.compare_digest(_digest(presented.strip()), _digest(token))
    if scheme.lower() != "bearer" or not matches:
        raise ApiError(
            401,
            "operator.invalid_token",
            "send the operator token: Authorization: Bearer <SAUTIKIT_OPERATOR_TOKEN>",
        )
