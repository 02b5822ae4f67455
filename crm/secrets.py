"""Secrets never shown: every URL we print (a history database, a webhook, a tracking
server) goes through `masked_url`, and every message that may quote one (a driver's or a
client's error) through `mask_urls`.

Masked: the whole user part (`user:password@` and a token as the user, `token@`), and the
value of every query parameter whose name looks secret (token, key, secret, signature,
password, credential, auth, code). The path is kept (it is what tells two endpoints apart).
A URL that does not parse (`http://[::1`) is masked by pattern, never shown raw.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_NAMES = ("pass", "pwd", "secret", "token", "key", "sig", "credential", "auth", "code")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_USERINFO = re.compile(r"(://)[^/@\s]*@")
_QUERY_VALUE = re.compile(r"([?&;][^=&#\s]+=)([^&#\s]*)")


def _secret_name(name: str) -> bool:
    name = name.lower()
    return any(s in name for s in _SECRET_NAMES)


def masked_url(url: object) -> str:
    """`url` fit to show: its user part and secret-looking query values replaced by ***."""
    text = str(url)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
        query = parts.query
        if query:
            pairs = [
                (k, MASK if _secret_name(k) else v)
                for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            query = urlencode(pairs, safe="*")
        if netloc == parts.netloc and query == parts.query:
            return text  # nothing secret (urlunsplit would also turn sqlite:/// into sqlite:/)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not a URL that parses: by pattern, and every query value
        text = _USERINFO.sub(rf"\1{MASK}@", text)
        return _QUERY_VALUE.sub(rf"\1{MASK}", text)


def mask_urls(message: object) -> str:
    """`message` with every URL in it masked (`masked_url`)."""
    return _URL.sub(lambda m: masked_url(m.group(0)), str(message))
