#!/usr/bin/env python3
"""A fake PostgreSQL server for dbreg's tests of hostile and broken targets.

    fakepg.py --port-file FILE --log FILE [--auth trust|cleartext|md5] [--mode MODE]
              [--notice TEXT] [--version 15.4] [--listen-only]

Listens on 127.0.0.1 on a port the kernel picks, writes that port (and a newline) to
--port-file once listening (atomically: a temporary file, then a rename), and serves
every connection in its own thread until SIGTERM or SIGINT (exit status 0).

It speaks protocol 3.0: SSLRequest and GSSENCRequest are refused with 'N' (libpq then
goes on in plain text, or fails with sslmode=require), CancelRequest closes, the
StartupMessage is logged, then the --auth exchange, the usual ParameterStatus messages,
BackendKeyData and ReadyForQuery.  Queries come by the simple protocol (Q) or the
extended one (Parse/Bind/Describe/Execute/Sync/Close/Flush).

--log gets one JSON object a line:
    {"event":"startup","params":{"user":...,"database":...,...}}
    {"event":"password","password":"..."}        (cleartext, or md5's "md5...")
    {"event":"query","sql":"...","params":["a",null]}
    {"event":"cancel","pid":N,"key":N}            (a CancelRequest came)

In mode normal the answers are what PostgreSQL 15 would plausibly give: one row, a
column per select-list item, named by its alias or as PostgreSQL names it (function
name, column name, else ?column?), with values for what dbreg asks (current_setting of
common settings, version(), pg_is_in_recovery() = f, current_timestamp, EXISTS = t,
literals, $n parameters, small integer arithmetic); an unknown value is "t" when the
alias looks boolean (exists, is_, ok), else "0".  The bad modes are listed in MODES.

If the file <port-file>.mode exists when a connection starts, its stripped contents
are that connection's mode instead of --mode.

--notice TEXT is sent as a NoticeResponse right after authentication and before each
statement's result; Python backslash escapes in TEXT are interpreted (\\xHH is that raw
byte, \\uXXXX a character in UTF-8).

Only the standard library; binds 127.0.0.1 only and never connects anywhere.
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import unicodedata

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_MESSAGE = 1 << 20  # the largest incoming message accepted (its length word included)

MODES = {
    "normal": "plausible PostgreSQL 15 answers",
    "zero-rows": "the expected columns, no row, SELECT 0",
    "few-columns": "one column x = 1, whatever was asked",
    "nulls": "the expected columns, every value NULL",
    "huge": "the expected columns, every value 2,000,000 bytes of 9",
    "garbage-values": "the expected columns, values abc<ESC>[31m, -, 99999999999999999999999, ''",
    "error": "ErrorResponse ERROR 42501 permission denied for fake",
    "error-after-first": "the first query normal, every later one the error",
    "garbage": "64 bytes that are no message at the first query, then close",
    "close-after-first": "the first query normal, close at the second without a reply",
    "hang-after-first": "the first query normal, then never answer",
    "fatal-login": "FATAL 28P01 password authentication failed, right after the login",
    "error-text-escape": "like error, with terminal escape sequences in the message",
    "listen-only": "accept and never send a byte (like --listen-only)",
}

HUGE_VALUE = b"9" * 2_000_000
GARBAGE_VALUES = [b"abc\x1b[31m", b"-", b"99999999999999999999999", b""]
ERROR_MESSAGE = b"permission denied for fake"
ESCAPE_ERROR_MESSAGE = b"bad\x1b]0;pwned\x07 \x1b[2J"


class ClientGone(Exception):
    """The client closed, or sent something that makes us close."""


class CloseNow(Exception):
    """Close this connection now (after flushing what is queued)."""


# ---- escapes in --notice -----------------------------------------------------------------

_SIMPLE_ESCAPES = {
    "\\": b"\\", "'": b"'", '"': b'"', "a": b"\a", "b": b"\b", "f": b"\f",
    "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v", "\n": b"",
}


def decode_escapes(text):
    """Python-style backslash escapes in TEXT, as bytes: \\xHH and \\ooo are raw bytes,
    \\uXXXX, \\UXXXXXXXX and \\N{NAME} characters in UTF-8; other text is UTF-8."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\" or i + 1 >= n:
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        d = text[i + 1]
        if d in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[d]
            i += 2
        elif d == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif d in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1:]).group()
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        elif d == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
            out += chr(int(text[i + 2:i + 6], 16)).encode("utf-8", "surrogatepass")
            i += 6
        elif d == "U" and re.fullmatch(r"[0-9a-fA-F]{8}", text[i + 2:i + 10]) \
                and int(text[i + 2:i + 10], 16) <= 0x10FFFF:
            out += chr(int(text[i + 2:i + 10], 16)).encode("utf-8", "surrogatepass")
            i += 10
        elif d == "N" and text[i + 2:i + 3] == "{" and "}" in text[i + 3:]:
            end = text.index("}", i + 3)
            try:
                out += unicodedata.lookup(text[i + 3:end]).encode("utf-8")
                i = end + 1
            except KeyError:
                out += b"\\"
                i += 1
        else:  # unknown escape: kept as it is, as Python does
            out += b"\\"
            i += 1
    return bytes(out)


# ---- messages ----------------------------------------------------------------------------

def b(x):
    if x is None:
        return b""
    if isinstance(x, bytes):
        return x
    return str(x).encode("utf-8", "surrogateescape")


def text_of(raw):
    return raw.decode("utf-8", "backslashreplace")


def message(kind, payload=b""):
    return kind + struct.pack("!i", len(payload) + 4) + payload


def cstring(x):
    return b(x) + b"\0"


def auth_request(code, extra=b""):
    return message(b"R", struct.pack("!i", code) + extra)


def parameter_status(name, value):
    return message(b"S", cstring(name) + cstring(value))


def ready_for_query(status):
    return message(b"Z", status)


def error_fields(severity, code, text):
    return (b"S" + cstring(severity) + b"V" + cstring(severity) + b"C" + cstring(code)
            + b"M" + cstring(text) + b"\0")


def error_response(severity, code, text):
    return message(b"E", error_fields(severity, code, text))


def notice_response(text):
    return message(b"N", error_fields("NOTICE", "00000", text))


def row_description(columns):
    out = struct.pack("!h", len(columns))
    for name in columns:
        # table 0, column 0, type text (25), size -1, typmod -1, text format
        out += cstring(name) + struct.pack("!ihihih", 0, 0, 25, -1, -1, 0)
    return message(b"T", out)


def data_row(values):
    out = [struct.pack("!h", len(values))]
    for v in values:
        if v is None:
            out.append(struct.pack("!i", -1))
        else:
            v = b(v)
            out.append(struct.pack("!i", len(v)))
            out.append(v)
    return message(b"D", b"".join(out))


def command_complete(tag):
    return message(b"C", cstring(tag))


# ---- a small SQL lexer -------------------------------------------------------------------

class Tok:
    __slots__ = ("kind", "value", "text")

    def __init__(self, kind, value, text):
        self.kind = kind    # ident qident str num param cast op punct other
        self.value = value  # idents lower-cased, strings and quoted idents unquoted
        self.text = text

    def kw(self, *words):
        return self.kind == "ident" and self.value in words

    def p(self, *chars):
        return self.kind == "punct" and self.value in chars

    def __repr__(self):
        return f"{self.kind}:{self.value!r}"


_IDENT_RE = re.compile(r"[^\W\d][\w$]*")
_NUM_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PARAM_RE = re.compile(r"\$(\d+)")
_DOLLAR_RE = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_OP_CHARS = set("+-*/<>=~!@#%^&|`?")
_E_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def tokenize(sql):
    toks = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        start = i
        if c in "eE" and sql[i + 1:i + 2] == "'":
            i += 2
            buf = []
            while i < n:
                ch = sql[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(_E_ESCAPES.get(sql[i + 1], sql[i + 1]))
                    i += 2
                elif ch == "'":
                    if sql[i + 1:i + 2] == "'":
                        buf.append("'")
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    buf.append(ch)
                    i += 1
            toks.append(Tok("str", "".join(buf), sql[start:i]))
            continue
        if c in "'\"" or (c in "bBxXnN" and sql[i + 1:i + 2] == "'"):
            if c not in "'\"":
                i += 1
            quote = sql[i]
            i += 1
            buf = []
            while i < n:
                ch = sql[i]
                if ch == quote:
                    if sql[i + 1:i + 2] == quote:
                        buf.append(quote)
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            toks.append(Tok("str" if quote == "'" else "qident", "".join(buf), sql[start:i]))
            continue
        if c == "$":
            m = _PARAM_RE.match(sql, i)
            if m:
                toks.append(Tok("param", int(m.group(1)), m.group()))
                i = m.end()
                continue
            m = _DOLLAR_RE.match(sql, i)
            if m:
                j = sql.find(m.group(), m.end())
                body = sql[m.end():j if j >= 0 else n]
                i = n if j < 0 else j + len(m.group())
                toks.append(Tok("str", body, sql[start:i]))
                continue
        if c.isdigit() or (c == "." and sql[i + 1:i + 2].isdigit()):
            m = _NUM_RE.match(sql, i)
            toks.append(Tok("num", m.group(), m.group()))
            i = m.end()
            continue
        m = _IDENT_RE.match(sql, i)
        if m:
            toks.append(Tok("ident", m.group().lower(), m.group()))
            i = m.end()
            continue
        if sql.startswith("::", i):
            toks.append(Tok("cast", "::", "::"))
            i += 2
            continue
        if c in "(),;[].:":
            toks.append(Tok("punct", c, c))
            i += 1
            continue
        if c in _OP_CHARS:
            j = i + 1
            while j < n and sql[j] in _OP_CHARS and not sql.startswith("--", j) \
                    and not sql.startswith("/*", j):
                j += 1
            toks.append(Tok("op", sql[i:j], sql[i:j]))
            i = j
            continue
        toks.append(Tok("other", c, c))
        i += 1
    return toks


def _opens(t):
    return t.p("(", "[") or t.kw("case")


def _closes(t):
    return t.p(")", "]") or t.kw("end")


def split_top(toks, is_sep):
    """TOKS split at the separators outside parentheses, brackets and CASE ... END."""
    parts, cur, depth = [], [], 0
    for t in toks:
        if depth == 0 and is_sep(t):
            parts.append(cur)
            cur = []
            continue
        if _opens(t):
            depth += 1
        elif _closes(t) and depth > 0:
            depth -= 1
        cur.append(t)
    parts.append(cur)
    return parts


def split_statements(toks):
    return [s for s in split_top(toks, lambda t: t.p(";")) if s]


def matching(toks, i):
    """Index of the token closing the bracket or CASE at TOKS[i], or None."""
    depth = 0
    for j in range(i, len(toks)):
        if _opens(toks[j]):
            depth += 1
        elif _closes(toks[j]):
            depth -= 1
            if depth == 0:
                return j
    return None


# ---- what PostgreSQL would answer --------------------------------------------------------

TYPE_NAMES = {
    "int": "int4", "integer": "int4", "int4": "int4", "bigint": "int8", "int8": "int8",
    "smallint": "int2", "int2": "int2", "real": "float4", "float4": "float4",
    "float": "float8", "float8": "float8", "double precision": "float8",
    "boolean": "bool", "bool": "bool", "character varying": "varchar", "varchar": "varchar",
    "character": "bpchar", "char": "bpchar", "decimal": "numeric",
    "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp",
    "time with time zone": "timetz", "time without time zone": "time",
}
_TYPE_WORDS = {"precision", "varying", "with", "without", "time", "zone"}

# Words that neither end an expression nor make an implicit alias.
_NOT_ALIAS = {
    "all", "and", "any", "array", "as", "asymmetric", "at", "between", "both", "case",
    "collate", "current_catalog", "current_date", "current_role", "current_schema",
    "current_time", "current_timestamp", "current_user", "default", "distinct", "else",
    "end", "escape", "exists", "false", "filter", "from", "ilike", "in", "is", "isnull",
    "leading", "like", "localtime", "localtimestamp", "not", "notnull", "null", "only", "or",
    "over", "precision", "session_user", "similar", "some", "symmetric", "then", "time",
    "trailing", "true", "unknown", "user", "varying", "when", "with", "within", "without",
    "zone",
}
_SQL_VALUE_FUNCTIONS = {
    "current_timestamp", "current_date", "current_time", "localtime", "localtimestamp",
    "current_user", "session_user", "user", "current_role", "current_catalog",
    "current_schema",
}
_SELECT_STOP = {"from", "where", "group", "having", "window", "order", "limit", "offset",
                "fetch", "for", "union", "intersect", "except", "into"}
_BOOLEAN_WORDS = {"and", "or", "not", "is", "in", "like", "ilike", "between", "similar",
                  "isnull", "notnull", "exists"}
_COMPARISONS = {"=", "<>", "!=", "<", ">", "<=", ">=", "~", "!~", "~*", "!~*", "@>", "<@", "&&"}
_INT_RE = re.compile(r"-?\d+")
_TRUE_WORDS = {"t", "true", "1", "yes", "y", "on"}
_FALSE_WORDS = {"f", "false", "0", "no", "n", "off"}


def now_text(tz=True):
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return ts + "+00" if tz else ts


class Eval:
    """What one statement means to a fake server: names and values of its columns."""

    def __init__(self, conn, params):
        self.conn = conn
        self.params = params  # text values, None for NULL

    # (name, known, value) of an expression; value None is NULL when known
    def expr(self, toks):
        if not toks:
            return None, False, None
        r = self.primary(toks, 0)
        if r is not None:
            i, name, known, value = r
            while i < len(toks):
                t = toks[i]
                if t.kind == "cast":
                    j, tname = self.type_name(toks, i + 1)
                    if j is None:
                        break
                    if name is None:
                        name = tname
                    if known and value is not None and tname == "bool":
                        v = str(value).lower()
                        value = "t" if v in _TRUE_WORDS else "f" if v in _FALSE_WORDS else value
                    i = j
                elif t.p("["):
                    j = matching(toks, i)
                    if j is None:
                        break
                    known, value, i = False, None, j + 1
                else:
                    break
            if i == len(toks):
                return name, known, value
        known, value = self.compound(toks)
        return None, known, value

    def type_name(self, toks, i):
        words = []
        while i < len(toks) and toks[i].kind in ("ident", "qident"):
            if words and toks[i].value not in _TYPE_WORDS:
                break
            words.append(toks[i].value)
            i += 1
            if i + 1 < len(toks) and toks[i].p(".") and toks[i + 1].kind in ("ident", "qident"):
                words = []
                i += 1
        if not words:
            return None, None
        if i < len(toks) and toks[i].p("("):
            j = matching(toks, i)
            if j is None:
                return None, None
            i = j + 1
        while i + 1 < len(toks) and toks[i].p("[") and toks[i + 1].p("]"):
            i += 2
        name = " ".join(words)
        return i, TYPE_NAMES.get(name, words[0])

    def primary(self, toks, i):
        n = len(toks)
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < n else None
        if t.kind in ("num", "str"):
            return i + 1, None, True, t.value
        if t.kind == "param":
            ok = 1 <= t.value <= len(self.params)
            return i + 1, None, ok, self.params[t.value - 1] if ok else None
        if t.kind == "op" and t.value in ("-", "+") and nxt is not None and nxt.kind == "num":
            return i + 2, None, True, (t.value + nxt.value).lstrip("+")
        if t.p("("):
            j = matching(toks, i)
            if j is None:
                return None
            inner = toks[i + 1:j]
            if inner and inner[0].kw("select", "with", "values", "table"):
                cols = self.select_items(inner)
                if cols:
                    name, known, value = cols[0]
                    return j + 1, name, known, value
                return j + 1, None, False, None
            return (j + 1,) + self.expr(inner)
        if t.kind not in ("ident", "qident"):
            return None
        w = t.value if t.kind == "ident" else None
        if w in ("true", "false"):
            return i + 1, "bool", True, w[0]
        if w == "null":
            return i + 1, None, True, None
        if w == "case":
            j = matching(toks, i)
            return None if j is None else (j + 1, "case", False, None)
        if w in ("exists", "array", "row") and nxt is not None and nxt.p("(", "["):
            j = matching(toks, i + 1)
            if j is None:
                return None
            return j + 1, w, w == "exists", "t" if w == "exists" else None
        if w in _SQL_VALUE_FUNCTIONS:
            j = i + 1
            if nxt is not None and nxt.p("("):
                j = matching(toks, i + 1)
                if j is None:
                    return None
                j += 1
            return j, w, True, self.sql_value_function(w)
        if w in _NOT_ALIAS or w == "select":
            return None
        if nxt is not None and nxt.kind == "str":  # a typed literal: interval '1 day'
            return i + 2, TYPE_NAMES.get(w, w), True, nxt.value
        names, j = [t.value], i + 1
        while j + 1 < n and toks[j].p(".") and toks[j + 1].kind in ("ident", "qident"):
            names.append(toks[j + 1].value)
            j += 2
        if j + 1 < n and toks[j].p(".") and toks[j + 1].kind == "op" and toks[j + 1].value == "*":
            return j + 2, None, False, None
        if j < n and toks[j].p("("):
            k = matching(toks, j)
            if k is None:
                return None
            fname = names[-1]
            args = toks[j + 1:k]
            if fname == "cast" and len(names) == 1:
                name, known, value = self.cast_call(args)
            else:
                name = fname
                known, value = self.call(fname, split_top(args, lambda x: x.p(",")) if args else [])
            k += 1
            if k + 1 < n and toks[k].kw("filter") and toks[k + 1].p("("):
                k = (matching(toks, k + 1) or n - 1) + 1
            if k + 2 < n and toks[k].kw("within") and toks[k + 1].kw("group") and toks[k + 2].p("("):
                k = (matching(toks, k + 2) or n - 1) + 1
            if k + 1 < n and toks[k].kw("over"):
                k = (matching(toks, k + 1) or n - 1) + 1 if toks[k + 1].p("(") else k + 2
            return k, name, known, value
        return j, names[-1], False, None

    def cast_call(self, args):
        parts = split_top(args, lambda x: x.kw("as"))
        if len(parts) != 2:
            return None, False, None
        name, known, value = self.expr(parts[0])
        _, tname = self.type_name(parts[1], 0)
        return name or tname, known, value

    def sql_value_function(self, w):
        c = self.conn
        if w in ("current_timestamp", "localtimestamp"):
            return now_text(w == "current_timestamp")
        if w == "current_date":
            return now_text()[:10]
        if w in ("current_time", "localtime"):
            return now_text()[11:] if w == "current_time" else now_text(False)[11:]
        if w in ("current_user", "session_user", "user", "current_role"):
            return c.startup.get("user", "postgres")
        if w == "current_catalog":
            return c.startup.get("database", c.startup.get("user", "postgres"))
        return "public"

    def arg(self, args, k):
        if k >= len(args):
            return False, None
        _, known, value = self.expr(args[k])
        return known, value

    def call(self, fname, args):
        c = self.conn
        if fname == "pg_is_in_recovery" or fname == "pg_is_wal_replay_paused":
            return True, "f"
        if fname == "version":
            return True, f"PostgreSQL {c.server.version} fake"
        if fname == "current_setting":
            known, name = self.arg(args, 0)
            if not known or name is None:
                return False, None
            value = c.settings.get(str(name).lower())
            if value is not None:
                return True, value
            missing_ok = self.arg(args, 1)
            if missing_ok[0] and str(missing_ok[1]).lower() in _TRUE_WORDS:
                return True, None
            return False, None
        if fname in ("now", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
                     "pg_postmaster_start_time", "pg_conf_load_time"):
            return True, now_text()
        if fname == "pg_backend_pid":
            return True, str(c.pid)
        if fname == "current_database":
            return True, self.sql_value_function("current_catalog")
        if fname in ("current_schema", "current_schemas"):
            return True, "public" if fname == "current_schema" else "{pg_catalog,public}"
        if fname == "inet_server_port":
            return True, str(c.server.port)
        if fname == "inet_client_port":
            return True, str(c.addr[1])
        if fname in ("inet_server_addr", "inet_client_addr"):
            return True, "127.0.0.1"
        if fname.startswith("has_") and fname.endswith("_privilege") or fname in (
                "pg_has_role", "pg_try_advisory_lock", "pg_try_advisory_xact_lock"):
            return True, "t"
        if fname in ("pg_advisory_lock", "pg_advisory_xact_lock", "pg_advisory_unlock_all"):
            return True, ""
        if fname == "count":
            return True, "0"
        if fname in ("txid_current", "pg_current_xact_id"):
            return True, "1000"
        if fname in ("pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn"):
            return True, "0/3000060"
        if fname in ("pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
                     "pg_last_xact_replay_timestamp"):
            return True, None  # a primary
        if fname == "coalesce":
            for k in range(len(args)):
                known, value = self.arg(args, k)
                if not known:
                    return False, None
                if value is not None:
                    return True, value
            return True, None
        if fname == "quote_ident":
            known, value = self.arg(args, 0)
            if not known or value is None:
                return known, None
            v = str(value)
            return True, v if re.fullmatch(r"[a-z_][a-z0-9_$]*", v) else '"' + v.replace('"', '""') + '"'
        if fname == "set_config":
            return self.arg(args, 1)
        if fname in ("upper", "lower", "md5", "length"):
            known, value = self.arg(args, 0)
            if not known or value is None:
                return known, None
            v = str(value)
            return True, {"upper": v.upper, "lower": v.lower,
                          "md5": lambda: hashlib.md5(b(v)).hexdigest(),
                          "length": lambda: str(len(v))}[fname]()
        if fname == "pg_sleep":
            known, value = self.arg(args, 0)
            try:
                time.sleep(min(max(float(value), 0.0), 3600.0))
            except (TypeError, ValueError):
                pass
            return True, ""
        return False, None

    def compound(self, toks):
        """(known, value) of an expression with operators at its top level."""
        depth = 0
        for t in toks:
            if _opens(t):
                depth += 1
            elif _closes(t) and depth > 0:
                depth -= 1
            elif depth == 0 and ((t.kind == "op" and t.value in _COMPARISONS)
                                 or (t.kind == "ident" and t.value in _BOOLEAN_WORDS)):
                return True, "t"
        # integer arithmetic of known operands: 3 + coalesce(x, 0)
        operands, ops, cur, depth = [], [], [], 0
        for t in toks:
            if depth == 0 and t.kind == "op" and t.value in ("+", "-", "*", "/", "%") and cur:
                operands.append(cur)
                ops.append(t.value)
                cur = []
                continue
            if _opens(t):
                depth += 1
            elif _closes(t) and depth > 0:
                depth -= 1
            cur.append(t)
        operands.append(cur)
        if not ops:
            return False, None
        values = []
        for o in operands:
            _, known, value = self.expr(o)
            if not known:
                return False, None
            if value is None:
                return True, None
            if not _INT_RE.fullmatch(str(value)):
                return False, None
            values.append(int(value))
        try:
            return True, str(_arith(values, ops))
        except ZeroDivisionError:
            return False, None

    def split_alias(self, item):
        if len(item) >= 2 and item[-2].kw("as") and item[-1].kind in ("ident", "qident"):
            return item[-1].value, item[:-2]
        if len(item) >= 2 and (item[-1].kind == "qident"
                               or (item[-1].kind == "ident" and item[-1].value not in _NOT_ALIAS)):
            prev = item[-2]
            if prev.kind in ("num", "str", "param", "qident") or prev.p(")", "]") \
                    or (prev.kind == "ident" and prev.value not in _NOT_ALIAS
                        and not (len(item) >= 3 and item[-3].kind == "cast")):
                return item[-1].value, item[:-1]
        return None, item

    def select_items(self, toks):
        """[(name, known, value)] of a SELECT (or VALUES) statement's first row, or None."""
        rows = self.select(toks)
        if rows is None:
            return None
        names, rows = rows
        return [(n, True, v) for n, v in zip(names, rows[0])] if rows else []

    def select(self, toks):
        """(column names, rows) for a row-returning statement, or None if it is not one."""
        depth, start = 0, None
        for k, t in enumerate(toks):
            if depth == 0 and t.kw("select", "values", "table", "insert", "update", "delete", "merge"):
                start = k
                break
            if _opens(t):
                depth += 1
            elif _closes(t) and depth > 0:
                depth -= 1
        if start is None:  # (SELECT ...) UNION ...: the first SELECT inside
            for k, t in enumerate(toks):
                if t.kw("select", "values"):
                    start = k
                    break
        if start is None or not toks[start].kw("select", "values", "table"):
            return None
        head = toks[start]
        rest = toks[start + 1:]
        if head.kw("table"):
            return ["?column?"], [["1"]]
        if head.kw("values"):
            rows = []
            for part in split_top(rest, lambda t: t.p(",")):
                if not part or not part[0].p("("):
                    break
                j = matching(part, 0)
                if j is None:
                    break
                row = []
                for item in split_top(part[1:j], lambda t: t.p(",")):
                    _, known, value = self.expr(item)
                    row.append(value if known else "0")
                rows.append(row)
            if not rows:
                return None
            return [f"column{k + 1}" for k in range(len(rows[0]))], rows
        i = 0
        if i < len(rest) and rest[i].kw("all"):
            i += 1
        elif i < len(rest) and rest[i].kw("distinct"):
            i += 1
            if i + 1 < len(rest) and rest[i].kw("on") and rest[i + 1].p("("):
                i = (matching(rest, i + 1) or len(rest) - 1) + 1
        items, cur, depth = [], [], 0
        prev = [None, None]
        for t in rest[i:]:
            if depth == 0 and t.kind == "ident" and t.value in _SELECT_STOP:
                # x IS [NOT] DISTINCT FROM y is no FROM clause
                if not (t.value == "from" and prev[1] is not None and prev[1].kw("distinct")
                        and prev[0] is not None and prev[0].kw("is", "not")):
                    break
            if depth == 0 and t.p(","):
                items.append(cur)
                cur = []
            else:
                if _opens(t):
                    depth += 1
                elif _closes(t):
                    if depth == 0:
                        break
                    depth -= 1
                cur.append(t)
            prev = [prev[1], t]
        if cur or items:
            items.append(cur)
        names, row = [], []
        for item in items:
            alias, expr = self.split_alias(item)
            name, known, value = self.expr(expr)
            names.append(alias if alias is not None else (name or "?column?"))
            row.append(value if known else guess_value(alias, name, expr, self.conn.server.version))
        return names, [row]


def _arith(values, ops):
    def div(a, c):
        q = abs(a) // abs(c)
        return q if (a >= 0) == (c >= 0) else -q

    # * / % first, then + -
    vals, pend = [values[0]], []
    for op, v in zip(ops, values[1:]):
        if op in "*/%":
            a = vals.pop()
            vals.append(a * v if op == "*" else div(a, v) if op == "/" else a - div(a, v) * v)
        else:
            pend.append(op)
            vals.append(v)
    total = vals[0]
    for op, v in zip(pend, vals[1:]):
        total = total + v if op == "+" else total - v
    return total


def guess_value(alias, name, expr, version):
    label = (alias or name or "").lower()
    if label == "max_connections":
        return "100"
    if label == "server_version":
        return version
    if label.startswith("replay_lag_"):
        return None  # a standby caught up and idle: PostgreSQL's nulls
    if alias is not None and ("exists" in label or "is_" in label or "ok" in label):
        return "t"
    if any(t.kw("exists", "pg_is_in_recovery") for t in expr):
        return "t"
    return "0"


_COMMAND_TAGS = {
    "insert": "INSERT 0 0", "update": "UPDATE 0", "delete": "DELETE 0", "merge": "MERGE 0",
    "begin": "BEGIN", "start": "START TRANSACTION", "commit": "COMMIT", "end": "COMMIT",
    "rollback": "ROLLBACK", "abort": "ROLLBACK", "set": "SET", "reset": "RESET",
    "copy": "COPY 0", "fetch": "FETCH 0", "move": "MOVE 0",
}


def command_tag(toks):
    words = [t.value for t in toks if t.kind == "ident"]
    if not words:
        return "SELECT 0"
    first = words[0]
    if first in ("with",):
        for w in words[1:]:
            if w in ("insert", "update", "delete", "merge"):
                return _COMMAND_TAGS[w]
    if first in _COMMAND_TAGS:
        return _COMMAND_TAGS[first]
    if first in ("create", "drop", "alter") and len(words) > 1:
        rest = [w for w in words[1:] if w not in ("or", "replace", "unique", "temp", "temporary",
                                                  "unlogged", "if", "not", "exists", "global",
                                                  "local", "materialized", "concurrently")]
        if rest:
            return f"{first.upper()} {rest[0].upper()}"
    if first in ("discard", "lock", "truncate") and len(words) > 1:
        return f"{first.upper()} {'TABLE' if first != 'discard' else words[1].upper()}"
    return first.upper()


# ---- the server --------------------------------------------------------------------------

class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="ascii")

    def write(self, obj):
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        with self.lock:
            self.f.write(line)
            self.f.flush()


class Server:
    def __init__(self, args):
        self.args = args
        self.auth = args.auth
        self.mode = args.mode
        self.version = args.version
        self.notice = decode_escapes(args.notice) if args.notice is not None else None
        self.log = Log(args.log)
        self.mode_file = args.port_file + ".mode"
        self.port = None
        try:
            major, minor = (args.version.split(".") + ["0"])[:2]
            self.version_num = str(int(major) * 10000 + int(re.match(r"\d*", minor).group() or 0))
        except ValueError:
            self.version_num = "0"
        self.settings = {
            "server_version": self.version, "server_version_num": self.version_num,
            "server_encoding": "UTF8", "client_encoding": "UTF8", "datestyle": "ISO, MDY",
            "integer_datetimes": "on", "standard_conforming_strings": "on", "timezone": "UTC",
            "intervalstyle": "postgres", "is_superuser": "off", "max_connections": "100",
            "superuser_reserved_connections": "3", "statement_timeout": "0",
            "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
            "transaction_read_only": "off", "default_transaction_read_only": "off",
            "in_hot_standby": "off", "hot_standby": "on", "search_path": '"$user", public',
            "ssl": "off", "listen_addresses": "localhost", "wal_level": "replica",
            "shared_buffers": "128MB", "work_mem": "4MB", "max_wal_senders": "10",
            "max_replication_slots": "10", "lc_messages": "C", "block_size": "8192",
            "transaction_isolation": "read committed", "application_name": "",
        }

    def mode_for_connection(self):
        try:
            with open(self.mode_file, encoding="utf-8") as f:
                mode = f.read().strip()
        except OSError:
            return "listen-only" if self.args.listen_only else self.mode
        if mode in MODES:
            return mode
        print(f"fakepg: unknown mode {mode!r} in {self.mode_file}; using {self.mode}",
              file=sys.stderr, flush=True)
        return self.mode

    def serve(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        self.port = ls.getsockname()[1]
        tmp = f"{self.args.port_file}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{self.port}\n")
        os.rename(tmp, self.args.port_file)
        while True:
            try:
                sock, addr = ls.accept()
            except OSError:
                time.sleep(0.01)  # e.g. EMFILE: let the others finish
                continue
            conn = Conn(self, sock, addr)
            threading.Thread(target=conn.run, daemon=True).start()


class Conn:
    def __init__(self, server, sock, addr):
        self.server = server
        self.sock = sock
        self.addr = addr
        self.inbuf = bytearray()
        self.out = bytearray()
        self.mode = server.mode_for_connection()
        self.queries = 0
        self.startup = {}
        self.settings = dict(server.settings)
        self.pid = random.randint(1000, 2 ** 22)
        self.secret = random.randint(0, 2 ** 31 - 1)
        self.statements = {}
        self.portals = {}
        self.skip_to_sync = False
        self.txn = b"I"

    # -- I/O

    def send(self, data):
        self.out += data

    def flush(self):
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            self.sock.sendall(data)

    def recv_exact(self, n):
        while len(self.inbuf) < n:
            self.flush()
            chunk = self.sock.recv(max(65536, n - len(self.inbuf)))
            if not chunk:
                raise ClientGone()
            self.inbuf += chunk
        data = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        return data

    def read_message(self):
        head = self.recv_exact(5)
        length = struct.unpack("!i", head[1:])[0]
        if length < 4 or length > MAX_MESSAGE:
            raise ClientGone()
        return head[:1], self.recv_exact(length - 4)

    def discard_forever(self):
        """Keep the connection, read and drop what comes, until the client closes."""
        self.flush()
        self.inbuf.clear()
        while self.sock.recv(65536):
            pass

    def close(self):
        try:
            self.flush()
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_WR)
            # read what the client still sends (libpq's Terminate) so that closing
            # does not reset the connection before it has read our last bytes
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                if not self.sock.recv(65536):
                    break
        except OSError:
            pass
        self.sock.close()

    def log(self, obj):
        self.server.log.write(obj)

    # -- the connection

    def run(self):
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.mode == "listen-only":
                self.discard_forever()
                return
            if self.startup_phase() and self.authenticate():
                self.loop()
        except (ClientGone, CloseNow, OSError):
            pass
        except Exception:  # noqa: BLE001 - one bad connection must not kill the server
            print(f"fakepg: connection from port {self.addr[1]}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        finally:
            self.close()

    def startup_phase(self):
        for _ in range(10):
            length = struct.unpack("!i", self.recv_exact(4))[0]
            if length < 8 or length > MAX_MESSAGE:
                return False
            body = self.recv_exact(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.send(b"N")
                continue
            if code == CANCEL_REQUEST:
                if len(body) >= 12:
                    pid, key = struct.unpack("!ii", body[4:12])
                    self.log({"event": "cancel", "pid": pid, "key": key})
                return False
            if code >> 16 != 3:
                self.send(error_response("FATAL", "0A000",
                                         f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}:"
                                         " server supports 3.0 to 3.0"))
                return False
            fields = body[4:].split(b"\0")
            params = {}
            for k in range(0, len(fields) - 1, 2):
                if not fields[k]:
                    break
                params[text_of(fields[k])] = text_of(fields[k + 1])
            self.startup = params
            self.log({"event": "startup", "params": params})
            self.apply_startup(params)
            return True
        return False

    def apply_startup(self, params):
        for key, value in params.items():
            if key not in ("user", "database", "options", "replication"):
                self.settings[key.lower()] = value
        for m in re.finditer(r"(?:-c\s*|--)([A-Za-z_.]+)=(\S*)", params.get("options", "")):
            self.settings[m.group(1).lower()] = m.group(2)
        enc = self.settings.get("client_encoding", "UTF8").upper().replace("-", "")
        self.settings["client_encoding"] = "UTF8" if enc in ("UTF8", "UNICODE") else enc

    def authenticate(self):
        auth = self.server.auth
        if auth in ("cleartext", "md5"):
            if auth == "cleartext":
                self.send(auth_request(3))
            else:
                self.send(auth_request(5, os.urandom(4)))
            kind, body = self.read_message()
            if kind != b"p":
                self.send(error_response("FATAL", "08P01",
                                         f"expected password response, got message type {kind[0]}"))
                return False
            self.log({"event": "password", "password": text_of(body.split(b"\0", 1)[0])})
        if self.mode == "fatal-login":
            user = self.startup.get("user", "x")
            self.send(error_response("FATAL", "28P01",
                                     f'password authentication failed for user "{user}"'))
            return False
        self.send(auth_request(0))
        if self.server.notice is not None:
            self.send(notice_response(self.server.notice))
        s = self.settings
        for name, key in (("application_name", "application_name"),
                          ("client_encoding", "client_encoding"), ("DateStyle", "datestyle"),
                          ("default_transaction_read_only", "default_transaction_read_only"),
                          ("in_hot_standby", "in_hot_standby"),
                          ("integer_datetimes", "integer_datetimes"),
                          ("IntervalStyle", "intervalstyle"), ("is_superuser", "is_superuser"),
                          ("server_encoding", "server_encoding"),
                          ("server_version", "server_version")):
            self.send(parameter_status(name, s[key]))
        self.send(parameter_status("session_authorization", self.startup.get("user", "")))
        self.send(parameter_status("standard_conforming_strings", s["standard_conforming_strings"]))
        self.send(parameter_status("TimeZone", s["timezone"]))
        self.send(message(b"K", struct.pack("!ii", self.pid, self.secret)))
        self.send(ready_for_query(self.txn))
        return True

    # -- answers

    def next_action(self):
        """What this query gets, after the mode: answer, error, close, hang or garbage."""
        self.queries += 1
        m = self.mode
        if m in ("error", "error-text-escape"):
            return "error"
        if m == "garbage":
            return "garbage"
        if self.queries > 1:
            return {"error-after-first": "error", "close-after-first": "close",
                    "hang-after-first": "hang"}.get(m, "answer")
        return "answer"

    def the_error(self):
        text = ESCAPE_ERROR_MESSAGE if self.mode == "error-text-escape" else ERROR_MESSAGE
        return ("error", error_response("ERROR", "42501", text))

    def act(self, action):
        """Carry out a non-answer; returns only for error (having queued it)."""
        if action == "error":
            self.notice()
            self.send(self.the_error()[1])
            self.failed()
            return
        if action == "close":
            raise CloseNow()
        if action == "hang":
            self.discard_forever()
            raise CloseNow()
        if action == "garbage":
            # type byte 0, a negative length, then noise: libpq loses synchronization
            self.send(b"\x00\xff\xff\xff\xff" + os.urandom(59))
            raise CloseNow()
        raise AssertionError(action)

    def notice(self):
        if self.server.notice is not None:
            self.send(notice_response(self.server.notice))

    def failed(self):
        if self.txn == b"T":
            self.txn = b"E"

    def answer(self, stmt, params):
        """('rows', names, rows, tag) | ('command', tag) | ('empty',) for one statement,
        in this connection's mode."""
        if not stmt:
            return ("empty",)
        try:
            ans = self.normal_answer(stmt, params)
        except Exception:  # noqa: BLE001 - a query we cannot read gets SELECT 1's answer
            traceback.print_exc(file=sys.stderr)
            ans = ("rows", ["?column?"], [["1"]], "SELECT 1")
        if ans[0] != "rows":
            return ans
        _, names, rows, tag = ans
        m = self.mode
        if m == "zero-rows":
            rows = []
        elif m == "few-columns":
            names, rows = ["x"], [["1"]]
        elif m == "nulls":
            rows = [[None] * len(names) for _ in rows]
        elif m == "huge":
            rows = [[HUGE_VALUE] * len(names) for _ in rows]
        elif m == "garbage-values":
            rows = [[GARBAGE_VALUES[k % len(GARBAGE_VALUES)] for k in range(len(names))]
                    for _ in rows]
        if tag.startswith("SELECT"):
            tag = f"SELECT {len(rows)}"
        return ("rows", names, rows, tag)

    def normal_answer(self, stmt, params):
        first = stmt[0]
        if first.kw("show") and len(stmt) >= 2:
            name = " ".join(t.value for t in stmt[1:] if t.kind in ("ident", "qident"))
            key = {"time zone": "timezone", "transaction isolation level": "transaction_isolation"
                   }.get(name, name)
            return ("rows", [key], [[self.settings.get(key, "0")]], "SHOW")
        if first.kw("explain"):
            return ("rows", ["QUERY PLAN"], [["Result  (cost=0.00..0.01 rows=1 width=4)"]], "EXPLAIN")
        if first.kw("select", "with", "values", "table") or first.p("("):
            r = Eval(self, params).select(stmt)
            if r is not None:
                names, rows = r
                return ("rows", names, rows, f"SELECT {len(rows)}")
            if not first.kw("with"):
                return ("rows", ["?column?"], [["1"]], "SELECT 1")
        return ("command", command_tag(stmt))

    def emit(self, ans, describe=True):
        kind = ans[0]
        if kind == "rows":
            _, names, rows, tag = ans
            if describe:
                self.send(row_description(names))
            for row in rows:
                self.send(data_row(row))
            self.send(command_complete(tag))
        elif kind == "command":
            self.send(command_complete(ans[1]))
        elif kind == "empty":
            self.send(message(b"I"))

    def after_command(self, stmt, ans):
        """Transaction status and SET for a command that went through."""
        if ans[0] != "command" or not stmt:
            return
        w = stmt[0].value if stmt[0].kind == "ident" else ""
        if w in ("begin", "start"):
            self.txn = b"T"
        elif w in ("commit", "end", "rollback", "abort") and not (len(stmt) > 1 and stmt[1].kw("to")):
            self.txn = b"I"
        elif w == "set":
            words = [t for t in stmt[1:] if not t.kw("session", "local")]
            if len(words) >= 3 and words[0].kind in ("ident", "qident") and (
                    words[1].kw("to") or (words[1].kind == "op" and words[1].value == "=")):
                key = words[0].value.lower()
                value = ", ".join(t.value for t in words[2:] if not t.p(","))
                self.settings[key] = value
                reported = {"application_name": "application_name", "datestyle": "DateStyle",
                            "timezone": "TimeZone", "intervalstyle": "IntervalStyle",
                            "client_encoding": "client_encoding"}
                if key in reported:
                    self.send(parameter_status(reported[key], value))

    # -- the message loop

    def loop(self):
        while True:
            kind, body = self.read_message()
            if kind == b"X":
                return
            if self.skip_to_sync and kind != b"S":
                continue
            handler = {
                b"Q": self.on_query, b"P": self.on_parse, b"B": self.on_bind,
                b"D": self.on_describe, b"E": self.on_execute, b"S": self.on_sync,
                b"H": self.flush, b"C": self.on_close, b"F": self.on_function_call,
                b"d": None, b"c": None, b"f": None,
            }.get(kind, "bad")
            if handler == "bad":
                self.send(error_response("FATAL", "08P01",
                                         f"invalid frontend message type {kind[0]}"))
                return
            if handler is None:
                continue
            try:
                if kind == b"H":
                    handler()
                else:
                    handler(body)
            except (struct.error, ValueError, IndexError):
                # a message cut short or without its NULs, as PostgreSQL answers it
                self.send(error_response("FATAL", "08P01", "invalid message format"))
                return

    def on_query(self, body):
        sql = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        self.log({"event": "query", "sql": text_of(b(sql)), "params": []})
        action = self.next_action()
        if action != "answer":
            self.act(action)
        else:
            stmts = split_statements(tokenize(sql))
            if not stmts:
                self.notice()
                self.send(message(b"I"))
            for stmt in stmts:
                ans = self.answer(stmt, [])
                self.notice()
                self.emit(ans)
                self.after_command(stmt, ans)
        self.send(ready_for_query(self.txn))

    def extended_error(self, code, text):
        self.send(error_response("ERROR", code, text))
        self.failed()
        self.skip_to_sync = True

    def on_parse(self, body):
        name, rest = body.split(b"\0", 1)
        sql, rest = rest.split(b"\0", 1)
        sql = sql.decode("utf-8", "surrogateescape")
        nparams = struct.unpack("!h", rest[:2])[0] if len(rest) >= 2 else 0
        oids = list(struct.unpack(f"!{nparams}i", rest[2:2 + 4 * nparams])) \
            if nparams > 0 and len(rest) >= 2 + 4 * nparams else []
        stmts = split_statements(tokenize(sql))
        if len(stmts) > 1:
            self.log({"event": "query", "sql": text_of(b(sql)), "params": []})
            self.extended_error("42601", "cannot insert multiple commands into a prepared statement")
            return
        self.statements[name] = (sql, stmts[0] if stmts else [], oids)
        self.send(message(b"1"))

    def on_bind(self, body):
        portal, rest = body.split(b"\0", 1)
        stmt_name, rest = rest.split(b"\0", 1)
        if stmt_name not in self.statements:
            self.extended_error("26000",
                                f'prepared statement "{text_of(stmt_name)}" does not exist')
            return
        sql, stmt, _ = self.statements[stmt_name]
        off = 0
        nfmt = struct.unpack_from("!h", rest, off)[0]
        off += 2
        fmts = list(struct.unpack_from(f"!{nfmt}h", rest, off)) if nfmt > 0 else []
        off += 2 * max(nfmt, 0)
        nparams = struct.unpack_from("!h", rest, off)[0]
        off += 2
        params = []
        for k in range(max(nparams, 0)):
            length = struct.unpack_from("!i", rest, off)[0]
            off += 4
            if length < 0:
                params.append(None)
                continue
            raw = rest[off:off + length]
            off += length
            fmt = fmts[k] if len(fmts) > 1 else fmts[0] if fmts else 0
            params.append(text_of(raw) if fmt == 0 else "\\x" + raw.hex())
        self.log({"event": "query", "sql": text_of(b(sql)), "params": params})
        action = self.next_action()
        if action == "error":
            self.notice()
            self.send(self.the_error()[1])
            self.failed()
            self.skip_to_sync = True
            return
        if action != "answer":
            self.act(action)
        self.portals[portal] = {"stmt": stmt, "answer": self.answer(stmt, params), "noticed": False}
        self.send(message(b"2"))

    def portal_notice(self, p):
        if not p["noticed"]:
            p["noticed"] = True
            self.notice()

    def on_describe(self, body):
        what, name = body[:1], body[1:].split(b"\0", 1)[0]
        if what == b"S":
            if name not in self.statements:
                self.extended_error("26000", f'prepared statement "{text_of(name)}" does not exist')
                return
            sql, stmt, oids = self.statements[name]
            nparams = max([t.value for t in stmt if t.kind == "param"] + [len(oids)])
            types = [(oids[k] if k < len(oids) and oids[k] else 25) for k in range(nparams)]
            self.send(message(b"t", struct.pack(f"!h{nparams}i", nparams, *types)))
            ans = self.answer(stmt, [None] * nparams)
        elif what == b"P":
            p = self.portals.get(name)
            if p is None:
                self.extended_error("34000", f'portal "{text_of(name)}" does not exist')
                return
            self.portal_notice(p)
            ans = p["answer"]
        else:
            self.send(error_response("FATAL", "08P01", "invalid DESCRIBE message subtype"))
            raise CloseNow()
        if ans[0] == "rows":
            self.send(row_description(ans[1]))
        else:
            self.send(message(b"n"))

    def on_execute(self, body):
        name = body.split(b"\0", 1)[0]
        p = self.portals.get(name)
        if p is None:
            self.extended_error("34000", f'portal "{text_of(name)}" does not exist')
            return
        self.portal_notice(p)
        self.emit(p["answer"], describe=False)
        self.after_command(p["stmt"], p["answer"])

    def on_sync(self, _body):
        self.skip_to_sync = False
        self.portals.pop(b"", None)
        self.send(ready_for_query(self.txn))
        self.flush()

    def on_close(self, body):
        what, name = body[:1], body[1:].split(b"\0", 1)[0]
        (self.statements if what == b"S" else self.portals).pop(name, None)
        self.send(message(b"3"))

    def on_function_call(self, _body):
        self.send(error_response("ERROR", "0A000", "fakepg does not do function calls"))
        self.send(ready_for_query(self.txn))


def main():
    ap = argparse.ArgumentParser(description="A fake PostgreSQL server for dbreg's tests.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="modes:\n" + "\n".join(f"  {k:18} {v}" for k, v in MODES.items()))
    ap.add_argument("--port-file", required=True, help="where to write the port, once listening")
    ap.add_argument("--log", required=True, help="JSON lines: startup, password, query, cancel")
    ap.add_argument("--auth", choices=("trust", "cleartext", "md5"), default="cleartext")
    ap.add_argument("--mode", choices=tuple(MODES), default="normal")
    ap.add_argument("--notice", metavar="TEXT", help="a NoticeResponse (backslash escapes interpreted)")
    ap.add_argument("--version", default="15.4", help="the server_version reported (15.4)")
    ap.add_argument("--listen-only", action="store_true",
                    help="accept connections and never send a byte")
    args = ap.parse_args()

    def stop(_signum, _frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Server(args).serve()


if __name__ == "__main__":
    main()
