"""What makes two messages the same related item: the identity the ledger and the client token hang on.

Pure: hashes of canonical JSON. Never the SQS message id (redrive and replay give messages new ids).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Identity:
    """`key` names the item; `payload` is what a reuse of the same key must match.

    `client_token` is BatchCreateRelatedItem's clientToken (64 characters): the same item sent with the same
    parameters gets the same token, so the service itself returns the original result for a retried create.
    """

    key: str
    payload: str
    client_token: str
    # The payload as versions before this one computed it (the deployment's default performer included), also
    # accepted so records written by them do not conflict; None when it is `payload`.
    legacy_payload: str | None = None

    def matches(self, payload: str) -> bool:
        """Whether a payload stored for this key is this item's."""
        return payload in (self.payload, self.legacy_payload)

    def token(self, generation: int) -> str:
        """The client token of the `generation`th series of attempts.

        The service answers a reused token with its first answer, failures included. When that answer said
        the item was not created (a per-case failure), the next attempt needs a new token: generation + 1.
        """
        if generation == 0:
            return self.client_token
        return _sha256({"token": self.client_token, "generation": generation})


def identity_of(
    *,
    domain_id: str,
    case: str,
    type_: str,
    content: dict[str, Any],
    performed_by: dict[str, str] | None,
    idempotency_key: str | None,
    performer_given: bool = True,
) -> Identity:
    """The item's identity: a producer's own idempotencyKey, else domain + case + type + content.

    `case` is the case id, or `ref:` + the lower-cased reference id (reference ids are unique per domain and
    case-insensitive). With an idempotencyKey, reusing the key for another item (other case, content or
    performer named by the producer) is a conflict; without one, the content is the key and only the
    performer can differ. `performer_given`: False when `performed_by` is the deployment's default.
    """
    what = {"domainId": domain_id, "case": case, "type": type_, "content": content}
    parameters = _sha256({**what, "performedBy": performed_by})
    key = _sha256({"idempotencyKey": idempotency_key}) if idempotency_key is not None else _sha256(what)
    if idempotency_key is None:
        # The content is the key, so nothing can conflict: a changed performer (say, a redeploy with another
        # PERFORMED_BY) is still the same item.
        payload, legacy = key, None
    elif performer_given:
        payload, legacy = parameters, None
    else:
        # What the producer sent: a redeploy with another PERFORMED_BY does not make its retry a conflict.
        payload, legacy = _sha256({**what, "performedBy": "deployment default"}), parameters
    return Identity(
        key=key,
        payload=payload,
        client_token=_sha256({"token": "v1", "key": key, "p": parameters}),
        legacy_payload=legacy,
    )


def _sha256(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
