"""Standard Webhooks signatures on callbacks (https://www.standardwebhooks.com/)."""

from datetime import UTC, datetime

from standardwebhooks import Webhook

from stemforge.errors import ConfigurationError


class CallbackSigner:
    """Signs with every configured secret, so a receiver that knows either the old or the new
    secret can verify while a secret is being rotated."""

    def __init__(self, secrets: str) -> None:
        names = secrets.split()
        if not names:
            raise ConfigurationError("CALLBACK_SIGNING_SECRET is empty")
        try:
            self._webhooks = [Webhook(secret) for secret in names]
        except Exception as exc:  # the library raises its own error types for bad base64
            raise ConfigurationError(
                f"CALLBACK_SIGNING_SECRET must be whsec_ followed by base64: {exc}"
            ) from None

    def headers(self, webhook_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
        timestamp = (now or datetime.now(UTC)).replace(microsecond=0)
        text = body.decode()
        signatures = " ".join(webhook.sign(webhook_id, timestamp, text) for webhook in self._webhooks)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signatures,
        }
