"""Who the CLI (and a service started by hand) is: the logins kept in ``MICRO_HOME/tokens``.

The file holds one line per login, as Micro's does::

    micro://<proxy address>/<namespace>/<account id>:<base64 of the token's JSON>

so a login belongs to one server (its proxy address), one namespace and one account; the
components are percent-encoded where they hold ``/`` or ``%`` (``tls://`` addresses).
It is created with mode 0600 and always replaced whole (a temporary file and a rename,
under a lock), so a reader never sees half of it. Which account is current in an
environment is ``<env>.current-user`` in ``config.json``, as in Micro.

:class:`Credentials` is the login of one (environment, proxy, namespace): the account
``<env>.current-user`` names when it is logged in there, else the account logged in
there last (so switching namespaces and back finds the login that was left there).
A command aimed at another namespace for once (``-n``/``MICRO_NAMESPACE``) with no login
there calls as the login of the environment's current namespace (a ``micro`` admin may
act in every namespace; others are refused by the platform).
:meth:`Credentials.access_token` hands out its access token and buys a new one with the
refresh token when less than a minute is left; a refresh token the server rejects
(revoked, account deleted) forgets the login.

:func:`client_middleware` puts ``authorization: Bearer <token>`` on every outgoing call,
and :func:`developer_middleware` does the same for a service started by hand without an
account of its own, so it acts as the developer's logged-in CLI account.

Tokens and secrets are never logged or printed here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote

import msgspec

from micro import errors
from micro.auth.base import Token

if TYPE_CHECKING:
    from micro.auth.base import Auth
    from micro.envs import UserConfig
    from micro.rpc.types import ClientCall, ClientMiddleware, Next
    from micro.settings import Settings

__all__ = [
    "ACCESS_TOKEN_LIFE",
    "REFRESH_MARGIN",
    "Credentials",
    "Login",
    "TokenFile",
    "client_middleware",
    "developer_credentials",
    "developer_middleware",
    "normalise_proxy",
    "token_claims",
]

ACCESS_TOKEN_LIFE: Final = 15 * 60
"""Seconds an access token asked for by ``micro login`` (or a refresh) lives."""

REFRESH_MARGIN: Final = 60.0
"""Refresh an access token when it has less than this many seconds left (as Micro)."""

TOKENS_FILE: Final = "tokens"
_SCHEME: Final = "micro://"
_SAFE: Final = ":@[]"  # kept as is in a line; "/" and "%" are percent-encoded


@dataclass(frozen=True, slots=True)
class Login:
    """One line of the tokens file."""

    proxy: str
    namespace: str
    account: str
    token: Token

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.proxy, self.namespace, self.account)


def _encode(login: Login) -> str:
    where = "/".join(quote(part, safe=_SAFE) for part in login.key)
    data = base64.b64encode(msgspec.json.encode(login.token)).decode()
    return f"{_SCHEME}{where}:{data}"


def _decode(line: str) -> Login | None:
    """A line of the file, or ``None`` for one that is not a login (skipped, kept out)."""
    line = line.strip()
    if not line.startswith(_SCHEME):
        return None
    where, sep, data = line[len(_SCHEME) :].rpartition(":")
    parts = where.split("/")
    if not sep or len(parts) != 3:
        return None
    try:
        token = msgspec.json.decode(base64.b64decode(data, validate=True), type=Token)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    proxy, namespace, account = (unquote(part) for part in parts)
    return Login(proxy, namespace, account, token)


class TokenFile:
    """``MICRO_HOME/tokens``: logins by (proxy address, namespace, account id)."""

    def __init__(self, home: Path) -> None:
        self.path = home / TOKENS_FILE
        self._lock_path = home / f".{TOKENS_FILE}.lock"

    def logins(self) -> list[Login]:
        """Every login, oldest first (a login saved again moves to the end)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        found: dict[tuple[str, str, str], Login] = {}
        for line in text.splitlines():
            login = _decode(line)
            if login is not None:
                found.pop(login.key, None)
                found[login.key] = login
        return list(found.values())

    def get(self, proxy: str, namespace: str, account: str) -> Token | None:
        """The token of one login, if there is one."""
        for login in self.logins():
            if login.key == (proxy, namespace, account):
                return login.token
        return None

    def put(self, proxy: str, namespace: str, account: str, token: Token) -> None:
        """Save a login (replacing the one with the same key)."""
        key = (proxy, namespace, account)
        with self._locked():
            kept = [login for login in self.logins() if login.key != key]
            self._write([*kept, Login(proxy, namespace, account, token)])

    def remove(
        self, proxy: str, namespace: str, account: str, *, only_if: Token | None = None
    ) -> bool:
        """Forget a login; with ``only_if``, only while it still holds that token (so a
        login saved meanwhile by another process survives). True if one was removed."""
        key = (proxy, namespace, account)
        with self._locked():
            logins = self.logins()
            kept = [
                login
                for login in logins
                if login.key != key
                or (only_if is not None and login.token.refresh_token != only_if.refresh_token)
            ]
            if len(kept) == len(logins):
                return False
            self._write(kept)
            return True

    def _write(self, logins: list[Login]) -> None:
        """Replace the file whole: a 0600 temporary file, flushed, then renamed."""
        tmp = self.path.with_name(f".{TOKENS_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), 0o600)  # whatever mode a stale file had
                fh.writelines(_encode(login) + "\n" for login in logins)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write between processes (CLI commands, services)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: atomic replace only
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def token_claims(access_token: str) -> dict[str, Any]:
    """The claims of a JWT access token, *not verified* (for display: ``name``, ``sub``);
    ``{}`` when it is not a JWT. Never trust these for a decision."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def normalise_proxy(proxy: str) -> str:
    """A proxy address as the CLI uses it (and keys logins by): Micro's rule, an address
    without a port means TLS on port 443. ``ValueError`` when it is not an address."""
    from micro.wire.transport import Address, parse_address

    try:
        parse_address(proxy)
    except ValueError:
        parsed = parse_address(proxy, default_port=443)
        return str(Address(host=parsed.host, port=443, tls=True))
    return proxy


def _rejected(exc: errors.MicroError) -> bool:
    """Whether the auth service refused the refresh token itself (as opposed to not
    being reachable, throttling, or failing)."""
    if isinstance(exc, errors.Unauthorized | errors.Forbidden):
        return True
    # "no such account" from the auth service itself (not a routing 404)
    return isinstance(exc, errors.NotFound) and exc.id.startswith("auth")


class Credentials:
    """The login of one environment, proxy address and namespace; with ``fallback`` (the
    environment's current namespace), that namespace's login when there is none in
    ``namespace``."""

    recheck: float = 2.0
    """While not logged in, look at the files again at most this often (seconds): a
    service that calls a lot does not read two files per call, and still sees a login
    made meanwhile with ``micro login`` within this time."""

    def __init__(
        self, home: Path, env: str, proxy: str, namespace: str, *, fallback: str | None = None
    ) -> None:
        self.home = home
        self.env = env
        self.proxy = proxy
        self.namespace = namespace
        self.fallback = fallback if fallback != namespace else None
        self.file = TokenFile(home)
        self._cached: Login | None = None
        self._absent_until = 0.0
        self._lock: asyncio.Lock | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Credentials:
        """The login the CLI would use with these settings: ``MICRO_ENV`` or the current
        environment, ``MICRO_PROXY`` or its address, ``MICRO_NAMESPACE`` or its current
        namespace. ``KeyError`` for an unknown environment, ``ValueError`` for a bad
        address or ``config.json``."""
        from micro.envs import UserConfig, resolve_proxy

        config = UserConfig(settings.home)
        env, proxy = resolve_proxy(settings)
        current = config.namespace(env)
        return cls(
            settings.home,
            env,
            normalise_proxy(proxy) if proxy else "",
            settings.namespace or current,
            fallback=current,
        )

    def _config(self) -> UserConfig:
        from micro.envs import UserConfig

        return UserConfig(self.home)

    @property
    def _current_user_key(self) -> str:
        return f"{self.env}.current-user"

    # -- the login ------------------------------------------------------------------------

    def current(self, *, exact: bool = False) -> Login | None:
        """The login in use here: ``<env>.current-user`` if logged in here, else the
        account logged in here last; else (unless ``exact``) the same in the fallback
        namespace; ``None`` when not logged in."""
        logins = self.file.logins()
        namespaces = [self.namespace]
        if self.fallback is not None and not exact:
            namespaces.append(self.fallback)
        for namespace in namespaces:
            here = [
                login
                for login in logins
                if login.proxy == self.proxy and login.namespace == namespace
            ]
            if here:
                try:
                    user = self._config().get(self._current_user_key)
                except ValueError:
                    user = None
                for login in here:
                    if login.account == user:
                        return login
                return here[-1]
        return None

    def account_id(self) -> str | None:
        """The id of the account logged in here, or ``None``."""
        login = self.current()
        return None if login is None else login.account

    def save(self, account: str, token: Token) -> None:
        """Keep a new login and make its account the environment's current user."""
        self.file.put(self.proxy, self.namespace, account, token)
        config = self._config()
        config.set(self._current_user_key, account)
        self._cached = Login(self.proxy, self.namespace, account, token)
        self._absent_until = 0.0

    def forget(self) -> Login | None:
        """Forget the login of this very namespace (logout, or before a new login); the
        one forgotten, or ``None`` if there was none."""
        login = self.current(exact=True)
        if login is not None:
            self.file.remove(*login.key)
        self._cached = None
        self._absent_until = 0.0
        return login

    # -- the access token -----------------------------------------------------------------

    async def access_token(self, auth: Auth) -> str | None:
        """The access token to call with, refreshed through ``auth`` when less than a
        minute is left (and saved); ``None`` when not logged in, or when the server
        rejects the refresh token (the login is then forgotten). Other failures to
        refresh raise, unless the token in hand is still valid."""
        return await self._access_token(lambda: auth)

    async def _access_token(self, get_auth: Callable[[], Auth]) -> str | None:
        cached = self._cached
        if cached is None:
            if time.monotonic() < self._absent_until:
                return None
        elif cached.token.expiry - time.time() >= REFRESH_MARGIN:
            return cached.token.access_token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Read again: another call (or process) may have refreshed meanwhile.
            login = self.current()
            self._cached = login
            if login is None:
                self._absent_until = time.monotonic() + self.recheck
                return None
            token = login.token
            if token.expiry - time.time() >= REFRESH_MARGIN:
                return token.access_token
            if not token.refresh_token:
                return token.access_token if token.expiry > time.time() else None
            try:
                fresh = await get_auth().token(
                    refresh_token=token.refresh_token,
                    expiry=ACCESS_TOKEN_LIFE,
                    namespace=login.namespace,
                )
            except errors.MicroError as exc:
                if _rejected(exc):
                    self.file.remove(*login.key, only_if=token)
                    self._cached = None
                    self._absent_until = time.monotonic() + self.recheck
                    return None
                if token.expiry > time.time():
                    return token.access_token
                raise
            if not fresh.refresh_token:
                fresh = Token(fresh.access_token, token.refresh_token, fresh.created, fresh.expiry)
            self.file.put(*login.key, fresh)
            self._cached = Login(*login.key, fresh)
            return fresh.access_token


def client_middleware(
    credentials: Credentials, auth_factory: Callable[[], Auth]
) -> ClientMiddleware:
    """Client middleware that calls as ``credentials``' account: ``authorization: Bearer
    <access token>`` on every call that has none, while logged in. ``auth_factory`` makes
    the :class:`~micro.auth.base.Auth` that refreshes (called at the first refresh; an
    ``RPCAuth`` over the same client is fine: ``auth``'s ``Auth.Token`` is never given a
    token, so a refresh cannot recurse)."""
    made: list[Auth] = []

    def auth() -> Auth:
        if not made:
            made.append(auth_factory())
        return made[0]

    async def middleware(call: ClientCall, nxt: Next) -> Any:
        if "authorization" not in call.metadata and not (
            call.service == "auth" and call.endpoint == "Auth.Token"
        ):
            token = await credentials._access_token(auth)
            if token:
                call.metadata["authorization"] = f"Bearer {token}"
        return await nxt(call)

    return middleware


def developer_credentials(settings: Settings) -> Credentials | None:
    """The developer's CLI login for a service started by hand: ``None`` when the service
    has an account of its own (``MICRO_AUTH_ID``, set by the runtime) or the environment
    cannot be resolved. Its ``namespace`` is the one the developer's CLI uses
    (``MICRO_NAMESPACE``, else the environment's current namespace)."""
    if settings.auth_id:
        return None
    try:
        return Credentials.for_settings(settings)
    except (KeyError, ValueError):
        return None


def developer_middleware(
    settings: Settings, auth_factory: Callable[[], Auth]
) -> ClientMiddleware | None:
    """Client middleware for a service started by hand without ``MICRO_AUTH_ID`` /
    ``MICRO_AUTH_SECRET``: its calls carry the access token of the developer's logged-in
    CLI account for the current environment (same tokens file, same refresh). ``None``
    when the service has its own account. Not logged in: calls go out anonymous."""
    credentials = developer_credentials(settings)
    if credentials is None:
        return None
    return client_middleware(credentials, auth_factory)
