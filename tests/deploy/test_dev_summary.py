"""``scout dev``'s ready summary reaches its output in one write.

Whoever reads that output (a supervisor's log, the end-to-end tests waiting for "Scout is up")
sees the whole summary or none of it, and the workers' log lines, which share the output, never
land in the middle of it.
"""

import io
from types import SimpleNamespace

from rich.console import Console

from tooling.cli import dev


class Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        return super().write(text)


def test_the_ready_summary_is_written_once(monkeypatch):
    out = Writes()
    monkeypatch.setattr(dev, "console", Console(file=out, soft_wrap=True))
    settings = SimpleNamespace(
        nats_url="nats://127.0.0.1:4222",
        clerk_webhook_secret="whsec_clerk",
        stripe_webhook_secret="whsec_stripe",
        scout_nats_prefix="p1",
        identity_port=8001,
        local_billing=True,
    )
    services = list(dev.OWNS)
    endpoints = {
        f"{service}-{part}": f"http://127.0.0.1:{9000 + 10 * n + m}"
        for n, service in enumerate(services)
        for m, part in enumerate(("api", "worker"))
    }
    dev._summary(settings, services, endpoints, 1.5, "postgresql://127.0.0.1:5432/scout")
    text = out.getvalue()
    assert out.calls == 1, text
    assert text.index("Scout is up") < text.index("SCOUT_NATS_PREFIX=p1") < text.index("dev-token")
    assert "billing subscribe user_123" in text
