"""systemd's service notification protocol (sd_notify(3)), spoken directly.

A service of ``Type=notify`` tells systemd it is ready, reloading or stopping, gives a
one-line status and pings the watchdog by sending datagrams of ``KEY=VALUE`` lines to the
unix socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace).
No library is needed for that; without ``$NOTIFY_SOCKET`` (not run by systemd) every call
is a no-op. ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, when set, naming this process) asks
for a ``WATCHDOG=1`` at least that often: :meth:`Notifier.watchdog_interval_s` is half of it,
as sd_watchdog_enabled(3) recommends.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """From *env* (default: ``os.environ``, from which the variables are then removed, as
        sd_notify's ``unset_environment`` does, so that handler worker processes do not inherit them)."""
        source = os.environ if env is None else env
        address = source.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = source.get("WATCHDOG_PID")
        if source.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(source["WATCHDOG_USEC"]) or None
        if env is None:
            for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(key, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (keys upper-cased: ``notify(ready=1, status="...")``).
        Returns whether a datagram was sent; errors are swallowed (systemd may be gone)."""
        if self.address is None:
            return False
        text = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()) + "\n"
        addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(), addr)
            return True
        except OSError:
            return False

    def ready(self, status: str) -> bool:
        return self.notify(ready=1, status=status)

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC (systemd >= 253 wants it with Type=notify-reload)."""
        return self.notify(reloading=1, monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status: str) -> bool:
        return self.notify(stopping=1, status=status)

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


__all__ = ["Notifier"]
