"""The demo's phone with the Home Assistant companion app: what the answering machine notifies.

The answering machine blueprint (blueprints/automation/kpn_voip/answering_machine.yaml)
notifies a phone with the companion app, as Home Assistant's own notify blueprints do:
its input is a `mobile_app` device, and its notification carries a link to the
recording that the app opens when tapped.  The demo has no phone, so scripts/develop
registers one the way the app does (mobile_app's registration API), with a push URL on
loopback that this module serves: each notification Home Assistant pushes to "Demo
phone" is printed in develop's terminal.  The registration's webhook id is kept in the
config folder (PHONE_FILE), so later runs update the same device (its push URL: the
receiver's port is new each run) and automations made for it keep working.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .develop import Api

HOST: Final = "127.0.0.1"
PHONE_NAME: Final = "Demo phone"
PHONE_FILE: Final = ".develop-phone.json"  # in the config folder: {"webhook_id": ...}
_PHONE: Final = {
    "app_version": "1.0",
    "device_name": PHONE_NAME,
    "manufacturer": "kpn_devtools",
    "model": "scripts/develop",
    "os_version": "1",
}


class PushReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that takes the companion app's pushes.

    Home Assistant's mobile_app posts each notification as JSON (message, title,
    data); `say` gets one line per notification.  start() / stop().
    """

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    push = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    push = {}
                receiver.received.append(push)
                data = push.get("data") or {}
                link = f" (tap: {data['url']})" if data.get("url") else ""
                receiver.say(
                    f"{PHONE_NAME} got a notification: {push.get('title') or ''}: "
                    f"{push.get('message') or ''}{link}"
                )
                body = b"{}"  # mobile_app reads the answer as JSON
                self.send_response(HTTPStatus.CREATED)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the notification line above is what the user reads."""

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The push URL the phone's registration names."""
        return f"http://{HOST}:{self._server.server_address[1]}/push"

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="demo-phone"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()


def ensure_demo_phone(api: Api, config_dir: Path, push_url: str) -> bool:
    """ "Demo phone" is registered with mobile_app and pushes to `push_url`; True if it
    was registered now (first run), False if the existing one was updated.

    Registered as the companion app does it (POST /api/mobile_app/registrations,
    whose answer is the webhook id), updated through its webhook
    (`update_registration`).  A webhook id whose entry is gone (the device was
    deleted in the UI) registers a new phone.  Raises develop.DevelopError on an
    HTTP error of Home Assistant.
    """
    app_data = {"push_url": push_url, "push_token": "demo"}
    stored = config_dir / PHONE_FILE
    webhook_id = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        webhook_id = str(json.loads(stored.read_text())["webhook_id"])
    if webhook_id is not None and any(e["title"] == PHONE_NAME for e in api.entries("mobile_app")):
        api.request(
            "POST",
            f"/api/webhook/{webhook_id}",
            {"type": "update_registration", "data": {**_PHONE, "app_data": app_data}},
            auth=False,
        )
        return False
    reply = api.request(
        "POST",
        "/api/mobile_app/registrations",
        {
            **_PHONE,
            "app_id": "io.kpn_voip.demo_phone",
            "app_name": "Demo phone (scripts/develop)",
            "device_id": "kpn-voip-develop-demo-phone",
            "os_name": "Linux",
            "supports_encryption": False,
            "app_data": app_data,
        },
    )
    stored.write_text(json.dumps({"webhook_id": reply["webhook_id"]}))
    return True
