"""Protocol transcripts for the differential suite.

Each Transcript is a list of steps on named raw TCP connections ("a" unless
stated).  The result per connection is the normalized server->client stream
(see harness.normalize); `<EOF>` at the end means the server closed it.

Expectations (`expect`) are written in wire text; a bare `INFO` line matches
any INFO, `INFO {"k":v}` matches an INFO containing those normalized fields.
They were checked against nats-server 2.15.1.  The differential test asserts
nats-mini == nats-server regardless of `expect`; `expect` additionally pins
nats-server's behaviour so a change in the oracle is noticed.

To add one: append a T(...) below, run
    .venv/bin/python tests/py/harness.py dump <name>
to see nats-server's output, and paste it into `expect`.
"""

from __future__ import annotations

from harness import Open, Send, Sleep, Sync, Transcript, WaitClose


def _b(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("latin-1")


def send(data: str | bytes, conn: str = "a", split=None, delay: float = 0.002) -> Send:
    return Send(_b(data), conn, split, delay)


def sync(conn: str = "a") -> Sync:
    return Sync(conn)


def sleep(sec: float) -> Sleep:
    return Sleep(sec)


def opn(conn: str) -> Open:
    return Open(conn)


def closed(conn: str = "a", timeout: float = 3.0) -> WaitClose:
    return WaitClose(conn, timeout)


TRANSCRIPTS: list[Transcript] = []


def T(name: str, steps, expect=None, **kw) -> Transcript:
    t = Transcript(name=name, steps=list(steps), expect=expect, **kw)
    assert all(x.name != name for x in TRANSCRIPTS), f"duplicate transcript {name}"
    TRANSCRIPTS.append(t)
    return t


# CONNECT lines
CN = 'CONNECT {"verbose":false,"pedantic":false}\r\n'  # quiet
CV = 'CONNECT {"verbose":true,"pedantic":false}\r\n'  # verbose only
CP = 'CONNECT {"verbose":false,"pedantic":true}\r\n'  # pedantic only
CVP = "CONNECT {}\r\n"  # verbose + pedantic + echo
CH = 'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
CHV = 'CONNECT {"verbose":true,"pedantic":false,"headers":true}\r\n'
CNR = 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n'

UPO = "-ERR 'Unknown Protocol Operation'\r\n"
AUTHV = "-ERR 'Authorization Violation'\r\n"
TOKEN = {"token": "s3cr3t", "auth_timeout": 1}

# ---------------------------------------------------------------------------
# 1. Basic ops, INFO, CONNECT
# ---------------------------------------------------------------------------

T("info_first_then_ping", [send("PING\r\n")],
  'INFO {"proto":1,"headers":true,"max_payload":1048576,"host":"127.0.0.1",'
  '"client_ip":"127.0.0.1","port":"<present>","server_id":"<present>",'
  '"server_name":"<present>","version":"<present>","client_id":"<present>"} \r\nPONG\r\n',
  doc="first INFO: trailing space before CRLF, no auth_required/tls_required keys")
T("connect_quiet", [send(CN), sync()], "INFO\r\nPONG\r\n")
T("connect_verbose", [send(CV), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("connect_empty_object_is_verbose", [send(CVP), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("connect_no_space_before_json", [send("CONNECT{}\r\n"), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("connect_tab_before_json", [send("CONNECT\t{}\r\n"), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("connect_lowercase_op", [send("connect {}\r\n"), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("connect_unknown_fields_ignored",
  [send('CONNECT {"verbose":true,"foo":"bar","lang":"python","name":"x","version":"1.0"}\r\n'), sync()],
  "INFO\r\n+OK\r\nPONG\r\n")
T("connect_twice_allowed", [send(CV + CV), sync()], "INFO\r\n+OK\r\n+OK\r\nPONG\r\n")
T("connect_bad_json_silent_close", [send("CONNECT {bad json}\r\n"), closed()], "INFO\r\n<EOF>")
T("connect_protocol_2_rejected", [send('CONNECT {"verbose":false,"protocol":2}\r\n'), closed()],
  "INFO\r\n-ERR 'invalid client protocol'\r\n<EOF>")
T("connect_protocol_1_async_info_after_first_pong",
  [send('CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'), sync(), sync()],
  'INFO\r\nPONG\r\nINFO {"connect_info":true,"remote_account":"$G"} \r\nPONG\r\n')
T("connect_protocol_0_no_async_info",
  [send('CONNECT {"verbose":false,"pedantic":false,"protocol":0}\r\n'), sync(), sync()],
  "INFO\r\nPONG\r\nPONG\r\n")
T("protocol_1_ping_in_same_write_as_connect",
  [send('CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n'), sync()],
  'INFO\r\nPONG\r\nINFO {"connect_info":true,"remote_account":"$G"} \r\nPONG\r\n')

T("ping_before_connect", [send("PING\r\n")], "INFO\r\nPONG\r\n")
T("ping_mixed_case", [send("pInG\r\nping\r\nPing\r\n")], "INFO\r\nPONG\r\nPONG\r\nPONG\r\n")
T("ping_trailing_garbage_pingxyz", [send("PINGxyz\r\n")], "INFO\r\nPONG\r\n")
T("ping_trailing_spaces", [send("PING   \t\r\n")], "INFO\r\nPONG\r\n")
T("ping_lf_only", [send("PING\n")], "INFO\r\nPONG\r\n")
T("pong_from_client_ignored", [send(CN + "PONG\r\npong\r\n"), sync()], "INFO\r\nPONG\r\n")
T("plus_ok_from_client_ignored", [send(CN + "+OK\r\n+ok\r\n"), sync()], "INFO\r\nPONG\r\n")
T("info_from_client_ignored", [send(CN + 'INFO {"server_id":"x"}\r\n'), sync()], "INFO\r\nPONG\r\n")
T("minus_err_from_client_silent_close", [send(CN + "-ERR 'oops'\r\n"), closed()], "INFO\r\n<EOF>")
T("msg_from_client_unknown_op", [send(CN + "MSG foo 1 2\r\nhi\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")
T("hmsg_from_client_unknown_op", [send(CN + "HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), closed()],
  "INFO\r\n" + UPO + "<EOF>")
T("unknown_op", [send(CVP + "FOO\r\n"), closed()], "INFO\r\n+OK\r\n" + UPO + "<EOF>")
T("whitespace_before_op", [send(CN + " PING\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")
T("empty_line_is_unknown_op", [send(CN + "\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")

# ---------------------------------------------------------------------------
# 2. PUB / SUB / UNSUB
# ---------------------------------------------------------------------------

T("pub_sub_basic", [send(CN + "SUB foo 1\r\nPUB foo 5\r\nhello\r\n"), sync()],
  "INFO\r\nMSG foo 1 5\r\nhello\r\nPONG\r\n")
T("pub_with_reply", [send(CN + "SUB foo 1\r\nPUB foo bar 2\r\nhi\r\n"), sync()],
  "INFO\r\nMSG foo 1 bar 2\r\nhi\r\nPONG\r\n")
T("pub_size_zero", [send(CN + "SUB foo 1\r\nPUB foo 0\r\n\r\n"), sync()],
  "INFO\r\nMSG foo 1 0\r\n\r\nPONG\r\n")
T("pub_size_zero_with_reply", [send(CN + "SUB foo 1\r\nPUB foo _INBOX.r 0\r\n\r\n"), sync()],
  "INFO\r\nMSG foo 1 _INBOX.r 0\r\n\r\nPONG\r\n")
T("pub_payload_contains_crlf", [send(CN + "SUB foo 1\r\nPUB foo 8\r\nPING\r\nxy\r\n"), sync()],
  "INFO\r\nMSG foo 1 8\r\nPING\r\nxy\r\nPONG\r\n")
T("pub_binary_payload", [send(CN + "SUB foo 1\r\n" + "PUB foo 4\r\n\x00\xff\r\x01\r\n"), sync()],
  "INFO\r\nMSG foo 1 4\r\n\x00\xff\r\x01\r\nPONG\r\n")
T("pub_no_subscribers", [send(CN + "PUB foo 2\r\nhi\r\n"), sync()], "INFO\r\nPONG\r\n")
T("pub_sub_case_insensitive_ops", [send(CN + "sub foo 1\r\nPub foo 2\r\nhi\r\npInG\r\n")],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("subjects_are_case_sensitive", [send(CN + "SUB foo 1\r\nPUB FOO 1\r\nx\r\nPUB foo 1\r\ny\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\ny\r\nPONG\r\n")
T("tabs_as_separators", [send(CN + "SUB\tfoo\t1\r\nPUB\tfoo\tbar\t2\r\nhi\r\n"), sync()],
  "INFO\r\nMSG foo 1 bar 2\r\nhi\r\nPONG\r\n")
T("multiple_spaces_and_tabs", [send(CN + "SUB  \t foo   q \t 1\r\nPUB   foo  \t 2\r\nhi\r\n"), sync()],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("trailing_space_after_args", [send(CN + "SUB foo 1 \r\nPUB foo 2 \r\nhi\r\n"), sync()],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("lf_only_line_endings", [send(CN + "SUB foo 1\nPUB foo 2\nhi\r\nPING\n")],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("sub_before_connect_no_auth", [send("SUB foo 1\r\nPUB foo 2\r\nhi\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n",
  doc="before any CONNECT the connection is verbose (CONNECT defaults), so SUB and PUB get +OK")
T("pub_before_connect_no_auth", [send("PUB foo 2\r\nhi\r\nPUB foo.* 0\r\n\r\n"), sync()],
  "INFO\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nPONG\r\n",
  doc="before CONNECT the defaults are verbose+pedantic")
T("many_messages_one_write",
  [send(CN + "SUB foo 7\r\n" + "".join(f"PUB foo {len(str(i))}\r\n{i}\r\n" for i in range(50))), sync()],
  "INFO\r\n" + "".join(f"MSG foo 7 {len(str(i))}\r\n{i}\r\n" for i in range(50)) + "PONG\r\n")
T("fanout_two_connections",
  [send(CN + "SUB foo 1\r\n", "a"), sync("a"), send(CN + "SUB foo 9\r\n", "b"), sync("b"),
   send(CN + "PUB foo 2\r\nhi\r\n", "c"), sync("c"), sync("a"), sync("b")],
  {"a": "INFO\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n",
   "b": "INFO\r\nPONG\r\nMSG foo 9 2\r\nhi\r\nPONG\r\n",
   "c": "INFO\r\nPONG\r\n"})
T("unsub_basic", [send(CN + "SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\na\r\nPONG\r\n")
T("unsub_max_2_then_three_pubs",
  [send(CN + "SUB foo 1\r\nUNSUB 1 2\r\n" + "PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")
T("unsub_max_0_immediate", [send(CN + "SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\na\r\n"), sync()],
  "INFO\r\nPONG\r\n")
T("unsub_max_already_reached",
  [send(CN + "SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")
T("unsub_max_above_delivered",
  [send(CN + "SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1 2\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")
T("unsub_unknown_sid_verbose", [send(CV + "UNSUB 99\r\nUNSUB 98 3\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\nPONG\r\n")
T("sid_reuse_ignored", [send(CVP + "SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\na\r\nPUB foo 1\r\nb\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nb\r\nPONG\r\n")
T("sid_alphanumeric", [send(CN + "SUB foo abc.DEF\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo abc.DEF 1\r\nx\r\nPONG\r\n")

# ---------------------------------------------------------------------------
# 3. Wildcards, queue groups
# ---------------------------------------------------------------------------

T("wildcard_star", [send(CN + "SUB foo.* 1\r\nPUB foo.bar 1\r\na\r\nPUB foo.bar.baz 1\r\nb\r\nPUB foo 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG foo.bar 1 1\r\na\r\nPONG\r\n")
T("wildcard_gt", [send(CN + "SUB foo.> 1\r\nPUB foo.bar 1\r\na\r\nPUB foo.bar.baz 1\r\nb\r\nPUB foo 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG foo.bar 1 1\r\na\r\nMSG foo.bar.baz 1 1\r\nb\r\nPONG\r\n")
T("wildcard_gt_alone_matches_all", [send(CN + "SUB > 1\r\nPUB a 1\r\na\r\nPUB a.b.c 1\r\nb\r\n"), sync()],
  "INFO\r\nMSG a 1 1\r\na\r\nMSG a.b.c 1 1\r\nb\r\nPONG\r\n")
T("wildcard_star_middle", [send(CN + "SUB a.*.c 1\r\nPUB a.b.c 1\r\na\r\nPUB a.b.d 1\r\nb\r\nPUB a.c 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG a.b.c 1 1\r\na\r\nPONG\r\n")
T("partial_wildcard_is_literal", [send(CN + "SUB fo* 1\r\nSUB a> 2\r\nPUB foo 1\r\na\r\nPUB fo* 1\r\nb\r\nPUB a> 1\r\nc\r\n"), sync()],
  "INFO\r\nMSG fo* 1 1\r\nb\r\nMSG a> 2 1\r\nc\r\nPONG\r\n")
T("overlapping_subs_each_get_copy",
  [send(CN + "SUB foo.* 1\r\nSUB foo.> 2\r\nSUB foo.bar 3\r\nPUB foo.bar 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo.bar 1 1\r\nx\r\nMSG foo.bar 2 1\r\nx\r\nMSG foo.bar 3 1\r\nx\r\nPONG\r\n", sort_msgs=True,
  doc="nats-server's order among the copies is its sublist order (2,3,1), so runs of MSGs are sorted by sid")
T("pub_to_wildcard_subject_no_pedantic",
  [send(CN + "SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB foo.> 3\r\nPUB foo.* 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo.* 2 1\r\nx\r\nMSG foo.* 3 1\r\nx\r\nPONG\r\n", sort_msgs=True)
T("sub_invalid_subjects",
  [send(CN + "SUB foo. 1\r\nSUB .foo 2\r\nSUB foo..bar 3\r\nSUB foo.>.bar 4\r\nSUB > 5\r\nPUB x 1\r\ny\r\n"), sync()],
  "INFO\r\n-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n-ERR 'Invalid Subject'\r\n"
  "-ERR 'Invalid Subject'\r\nMSG x 5 1\r\ny\r\nPONG\r\n")
T("queue_single_member", [send(CN + "SUB foo q 1\r\nPUB foo 1\r\na\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\na\r\nPONG\r\n")
T("queue_two_members_one_conn",
  [send(CN + "SUB foo q 1\r\nSUB foo q 2\r\n" + "PUB foo 1\r\nx\r\n" * 6), sync()],
  "INFO\r\n" + "MSG foo Q 1\r\nx\r\n" * 6 + "PONG\r\n", queue_sids={"a": ["1", "2"]},
  doc="exactly one MSG per publish; which member is random, so both sids render as Q")
T("queue_plus_plain_sub",
  [send(CN + "SUB foo q 1\r\nSUB foo q 2\r\nSUB foo 3\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo 3 1\r\nx\r\nMSG foo Q 1\r\nx\r\nPONG\r\n", queue_sids={"a": ["1", "2"]}, sort_msgs=True,
  doc="plain sub gets a copy plus exactly one queue member")
T("queue_group_spans_subjects",
  [send(CN + "SUB foo.* q 1\r\nSUB foo.> q 2\r\n" + "PUB foo.x 1\r\nx\r\n" * 4), sync()],
  "INFO\r\n" + "MSG foo.x Q 1\r\nx\r\n" * 4 + "PONG\r\n", queue_sids={"a": ["1", "2"]})
T("queue_different_groups_each_get_one",
  [send(CN + "SUB foo q1 1\r\nSUB foo q2 2\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\nx\r\nMSG foo 2 1\r\nx\r\nPONG\r\n", sort_msgs=True)
T("queue_unsub_max", [send(CN + "SUB foo q 1\r\nUNSUB 1 2\r\n" + "PUB foo 1\r\nx\r\n" * 3), sync()],
  "INFO\r\nMSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\nPONG\r\n")

# ---------------------------------------------------------------------------
# 4. verbose / pedantic / echo
# ---------------------------------------------------------------------------

T("verbose_ok_placement",
  [send(CV + "SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nPING\r\n")],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n+OK\r\nPONG\r\n")
T("verbose_no_ok_after_ping", [send(CV + "PING\r\nPING\r\n")], "INFO\r\n+OK\r\nPONG\r\nPONG\r\n")
T("verbose_invalid_subject_no_ok", [send('CONNECT {"verbose":true}\r\nSUB foo..bar 1\r\nPING\r\n')],
  "INFO\r\n+OK\r\n-ERR 'Invalid Subject'\r\nPONG\r\n")
T("verbose_queue_sub_ok", [send(CV + "SUB foo q 1\r\nPING\r\n")], "INFO\r\n+OK\r\n+OK\r\nPONG\r\n")
T("verbose_hpub_ok", [send(CHV + "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\nPONG\r\n")
T("pedantic_invalid_publish_subject_still_delivered",
  [send('CONNECT {"pedantic":true}\r\nSUB foo.* 1\r\nPUB foo.* 2\r\nok\r\nPING\r\n')],
  "INFO\r\n+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nMSG foo.* 1 2\r\nok\r\nPONG\r\n")
T("pedantic_without_verbose", [send(CP + "PUB foo..bar 1\r\nx\r\nPUB foo.> 1\r\nx\r\n"), sync()],
  "INFO\r\n-ERR 'Invalid Publish Subject'\r\n-ERR 'Invalid Publish Subject'\r\nPONG\r\n")
T("pedantic_valid_subject_no_error", [send(CP + "SUB foo.bar 1\r\nPUB foo.bar 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo.bar 1 1\r\nx\r\nPONG\r\n")
T("echo_default_true", [send(CN + "SUB foo 1\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo 1 1\r\nx\r\nPONG\r\n")
T("echo_false_no_self_delivery",
  [send('CONNECT {"verbose":false,"echo":false}\r\nSUB foo 1\r\n', "a"), sync("a"),
   send(CN + "SUB foo 2\r\n", "b"), sync("b"),
   send("PUB foo 1\r\nx\r\n", "a"), sync("a"), sync("b")],
  {"a": "INFO\r\nPONG\r\nPONG\r\n", "b": "INFO\r\nPONG\r\nMSG foo 2 1\r\nx\r\nPONG\r\n"})
T("echo_false_queue_skips_self",
  [send('CONNECT {"verbose":false,"echo":false}\r\nSUB foo q 1\r\n', "a"), sync("a"),
   send(CN + "SUB foo q 2\r\n", "b"), sync("b"),
   send("PUB foo 1\r\nx\r\n" * 3, "a"), sync("a"), sync("b")],
  {"a": "INFO\r\nPONG\r\nPONG\r\n",
   "b": "INFO\r\nPONG\r\n" + "MSG foo 2 1\r\nx\r\n" * 3 + "PONG\r\n"})

# ---------------------------------------------------------------------------
# 5. Headers, no responders
# ---------------------------------------------------------------------------

HDR = "NATS/1.0\r\nAb: cd\r\n\r\n"  # 20 bytes
T("hpub_hmsg", [send(CH + "SUB foo 1\r\nHPUB foo 20 22\r\n" + HDR + "hi\r\n"), sync()],
  "INFO\r\nHMSG foo 1 20 22\r\n" + HDR + "hi\r\nPONG\r\n")
T("hpub_with_reply", [send(CH + "SUB foo 1\r\nHPUB foo rep 20 22\r\n" + HDR + "hi\r\n"), sync()],
  "INFO\r\nHMSG foo 1 rep 20 22\r\n" + HDR + "hi\r\nPONG\r\n")
T("hpub_headers_only", [send(CH + "SUB foo 1\r\nHPUB foo 20 20\r\n" + HDR + "\r\n"), sync()],
  "INFO\r\nHMSG foo 1 20 20\r\n" + HDR + "\r\nPONG\r\n")
T("hpub_status_line", [send(CH + "SUB foo 1\r\nHPUB foo 21 21\r\nNATS/1.0 503 gone\r\n\r\n\r\n"), sync()],
  "INFO\r\nHMSG foo 1 21 21\r\nNATS/1.0 503 gone\r\n\r\n\r\nPONG\r\n")
T("hpub_to_receiver_without_headers",
  [send(CN + "SUB foo 1\r\n", "r"), sync("r"),
   send(CH + "HPUB foo 20 22\r\n" + HDR + "hi\r\nHPUB foo r 20 20\r\n" + HDR + "\r\n", "p"), sync("p"), sync("r")],
  {"r": "INFO\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nMSG foo 1 r 0\r\n\r\nPONG\r\n", "p": "INFO\r\nPONG\r\n"})
T("pub_to_receiver_with_headers",
  [send(CH + "SUB foo 1\r\n", "r"), sync("r"), send(CN + "PUB foo 2\r\nhi\r\n", "p"), sync("p"), sync("r")],
  {"r": "INFO\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n", "p": "INFO\r\nPONG\r\n"})
T("hpub_without_headers_silent_close", [send(CVP + "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), closed()],
  "INFO\r\n+OK\r\n<EOF>")
T("hpub_without_headers_quiet_silent_close", [send(CN + "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), closed()],
  "INFO\r\n<EOF>")
T("hpub_headers_false_explicit", [send('CONNECT {"verbose":false,"headers":false}\r\nHPUB foo 12 14\r\n'), closed()],
  "INFO\r\n<EOF>")
T("hpub_hdr_greater_than_total", [send(CH + "HPUB foo 14 12\r\n"), closed()], "INFO\r\n<EOF>")
T("hpub_lowercase_op", [send(CH + "SUB foo 1\r\nhpub foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), sync()],
  "INFO\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n")
T("no_responders_503",
  [send(CNR + "SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n"), sync()],
  'INFO\r\nHMSG _INBOX.x 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n'
  'PONG\r\nINFO {"connect_info":true} \r\n')
T("no_responders_hpub_request",
  [send(CNR + "SUB _INBOX.y 1\r\nHPUB svc.long.name _INBOX.y 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"), sync()],
  'INFO\r\nHMSG _INBOX.y 1 45 45\r\nNATS/1.0 503\r\nNats-Subject: svc.long.name\r\n\r\n\r\n'
  'PONG\r\nINFO {"connect_info":true} \r\n')
T("no_responders_without_reply_sub", [send(CNR + "PUB svc _INBOX.x 0\r\n\r\n"), sync()],
  'INFO\r\nPONG\r\nINFO {"connect_info":true} \r\n')
T("no_responders_with_responder",
  [send(CN + "SUB svc 1\r\n", "s"), sync("s"),
   send(CNR + "SUB _INBOX.x 1\r\nPUB svc _INBOX.x 2\r\nhi\r\n", "c"), sync("c"), sync("s"),
   send("PUB _INBOX.x 2\r\nok\r\n", "s"), sync("s"), sync("c")],
  {"s": "INFO\r\nPONG\r\nMSG svc 1 _INBOX.x 2\r\nhi\r\nPONG\r\nPONG\r\n",
   "c": 'INFO\r\nPONG\r\nINFO {"connect_info":true} \r\nMSG _INBOX.x 1 2\r\nok\r\nPONG\r\n'})
T("no_responders_not_requested",
  [send(CH + "SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n"), sync()], "INFO\r\nPONG\r\n")
T("no_responders_requires_headers",
  [send('CONNECT {"verbose":false,"no_responders":true}\r\n'), closed()],
  "INFO\r\n-ERR 'no responders requires headers support'\r\n<EOF>")

# ---------------------------------------------------------------------------
# 6. Malformed input
# ---------------------------------------------------------------------------

for _name, _line in [
    ("pub_one_arg", "PUB foo\r\n"),
    ("pub_non_numeric_size", "PUB foo bar\r\n"),
    ("pub_four_args", "PUB a b c 1\r\n"),
    ("pub_negative_size", "PUB foo -1\r\n"),
    ("pub_space_no_args", "PUB \r\n"),
    ("sub_one_arg", "SUB foo\r\n"),
    ("sub_four_args", "SUB a b c d\r\n"),
    ("unsub_space_no_args", "UNSUB \r\n"),
    ("unsub_three_args", "UNSUB 1 2 3\r\n"),
    ("hpub_three_args_too_few", "HPUB foo 12\r\n"),
]:
    T("malformed_" + _name + "_silent_close", [send(CH + _line), closed()], "INFO\r\n<EOF>")

T("pub_no_args_no_space_unknown_op", [send(CN + "PUB\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>",
  doc="`PUB\\r\\n` (no space) is a parser error, unlike `PUB \\r\\n` (silent close)")
T("unsub_no_args_no_space_unknown_op", [send(CN + "UNSUB\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")
T("unsub_non_numeric_max_is_immediate",
  [send(CV + "SUB foo 1\r\nUNSUB 1 x\r\nPUB foo 1\r\na\r\nSUB bar 2\r\nUNSUB 2 -1\r\nPUB bar 1\r\nb\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\nPONG\r\n",
  doc="an unparsable or negative max is not an error: the sub is removed at once")
T("bad_payload_terminator", [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhiXX"), closed()],
  "INFO\r\n" + UPO + "<EOF>")
T("payload_longer_than_size", [send(CN + "SUB foo 1\r\nPUB foo 1\r\nhi\r\n"), closed()],
  "INFO\r\n" + UPO + "<EOF>")
T("payload_cr_without_lf", [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhi\rX\n"), closed()],
  "INFO\r\n" + UPO + "<EOF>")

# ---------------------------------------------------------------------------
# 7. Split reads
# ---------------------------------------------------------------------------

_STREAM = (CH + "SUB foo 1\r\nSUB bar q 2\r\nPUB foo rep 5\r\nhello\r\nHPUB bar 20 22\r\n" + HDR
           + "hi\r\nUNSUB 1\r\nPUB foo 1\r\nx\r\nPING\r\n")
_STREAM_OUT = ("INFO\r\nMSG foo 1 rep 5\r\nhello\r\nHMSG bar 2 20 22\r\n" + HDR + "hi\r\nPONG\r\n")
T("split_whole_stream_one_byte_at_a_time", [send(_STREAM, split=1, delay=0.001)], _STREAM_OUT)
T("split_in_chunks_of_3", [send(_STREAM, split=3)], _STREAM_OUT)
T("split_inside_op_names",
  [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n", split=[len(CN) + 1, len(CN) + 2, len(CN) + 12])],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("split_inside_args", [send(CN + "SUB foo.bar 1\r\nPUB foo.bar 2\r\nhi\r\nPING\r\n",
                             split=[len(CN) + 6, len(CN) + 17, len(CN) + 26])],
  "INFO\r\nMSG foo.bar 1 2\r\nhi\r\nPONG\r\n")
T("split_inside_payload", [send(CN + "SUB foo 1\r\n"), send("PUB foo 10\r\n0123456789\r\nPING\r\n", split=[15, 18])],
  "INFO\r\nMSG foo 1 10\r\n0123456789\r\nPONG\r\n")
T("split_between_cr_and_lf", [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n",
                                   split=[len(CN) - 1, len(CN) + 10, len(CN) + 22, len(CN) + 25])],
  "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n")
T("split_connect_json", [send('CONNECT {"verbose":true,"pedantic":false}\r\nPING\r\n', split=[12, 20, 30])],
  "INFO\r\n+OK\r\nPONG\r\n")
_BIG = bytes((i * 7) % 251 for i in range(300_000))
T("large_payload_many_writes",
  [send(CN + "SUB big 1\r\n"), send(b"PUB big 300000\r\n" + _BIG + b"\r\n", split=4096, delay=0.0005), sync()],
  "INFO\r\nMSG big 1 300000\r\n" + _BIG.decode("latin-1") + "\r\nPONG\r\n")
T("large_payload_one_write",
  [send(CN + "SUB big 1\r\n" + "PUB big 1048576\r\n" + "z" * 1048576 + "\r\n"), sync()],
  "INFO\r\nMSG big 1 1048576\r\n" + "z" * 1048576 + "\r\nPONG\r\n")

# ---------------------------------------------------------------------------
# 8. Limits (configured identically on both servers)
# ---------------------------------------------------------------------------

MP = {"max_payload": 1024}
T("max_payload_in_info", [send("PING\r\n")], 'INFO {"max_payload":1024} \r\nPONG\r\n', options=MP)
T("max_payload_exact_ok", [send(CN + "SUB foo 1\r\nPUB foo 1024\r\n" + "a" * 1024 + "\r\n"), sync()],
  "INFO\r\nMSG foo 1 1024\r\n" + "a" * 1024 + "\r\nPONG\r\n", options=MP)
T("max_payload_violation", [send(CN + "SUB foo 1\r\nPUB foo 1025\r\n"), closed()],
  "INFO\r\n-ERR 'Maximum Payload Violation'\r\n<EOF>", options=MP)
T("max_payload_violation_hpub_total", [send(CH + "HPUB foo 12 1025\r\n"), closed()],
  "INFO\r\n-ERR 'Maximum Payload Violation'\r\n<EOF>", options=MP)
MCL = {"max_control_line": 512}
T("max_control_line_complete_line", [send(CN + "SUB " + "a" * 600 + " 1\r\n"), closed()],
  "INFO\r\n-ERR 'maximum control line exceeded'\r\n<EOF>", options=MCL)
T("max_control_line_partial_line", [send(CN + "SUB " + "a" * 600), closed()],
  "INFO\r\n-ERR 'maximum control line exceeded'\r\n<EOF>", options=MCL)
T("max_control_line_just_below_ok", [send(CN + "SUB " + "a" * 500 + " 1\r\n"), sync()],
  "INFO\r\nPONG\r\n", options=MCL)
T("max_connections_exceeded",
  [sleep(0.3), opn("a"), sync("a"), opn("b"), sync("b"), opn("c"), closed("c"), sync("a")],
  {"a": "INFO\r\nPONG\r\nPONG\r\n", "b": "INFO\r\nPONG\r\n",
   "c": "INFO\r\n-ERR 'maximum connections exceeded'\r\n<EOF>"},
  options={"max_connections": 2})

# ---------------------------------------------------------------------------
# 9. Token auth, auth timeout, stale connection
# ---------------------------------------------------------------------------

T("auth_info_auth_required", [send('CONNECT {"verbose":false,"auth_token":"s3cr3t"}\r\n'), sync()],
  'INFO {"auth_required":true} \r\nPONG\r\n', options=TOKEN)
T("auth_token_ok", [send('CONNECT {"verbose":true,"auth_token":"s3cr3t"}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\n'), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nx\r\nPONG\r\n", options=TOKEN)
T("auth_token_wrong", [send('CONNECT {"verbose":true,"auth_token":"nope"}\r\n'), closed()],
  "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN)
T("auth_token_missing", [send('CONNECT {"verbose":true}\r\n'), closed()],
  "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN)
T("auth_pub_before_connect", [send("PUB foo 1\r\nx\r\n"), closed()], "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN)
T("auth_ping_before_connect", [send("PING\r\n"), closed()], "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN)
T("auth_timeout", [opn("a"), sleep(1.6)],
  "INFO\r\n-ERR 'Authentication Timeout'\r\n<EOF>", options=TOKEN, quiet=0.5)
T("auth_token_as_pass",
  [send('CONNECT {"verbose":true,"pass":"s3cr3t"}\r\nPING\r\n'), closed(timeout=1.0)],
  "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN,
  differs="nats-mini accepts a token sent as `pass` (nats-server only reads auth_token)",
  expect_mini="INFO\r\n+OK\r\nPONG\r\n")
T("stale_connection",
  [send(CN), sleep(4.5)],
  "INFO\r\nPING\r\nPING\r\n-ERR 'Stale Connection'\r\n<EOF>",
  options={"ping_interval": 1, "ping_max": 2}, keep_server_pings=True)
T("stale_connection_answered_stays_open",
  [send(CN), sleep(1.5), send("PONG\r\n"), sleep(1.2), send("PONG\r\n"), sleep(1.2), send("PONG\r\n"), sync()],
  "INFO\r\nPONG\r\n", options={"ping_interval": 1, "ping_max": 2},
  doc="server PINGs are stripped; the connection must survive and answer our PING")

# ---------------------------------------------------------------------------
# 10. Edge cases found by probing nats-server 2.15.1
# ---------------------------------------------------------------------------

CNP = 'CONNECT {"verbose":false,"pedantic":false}\r\n'
T("pub_size_leading_zero_echoed", [send(CN + "SUB foo 1\r\nPUB foo 02\r\nhi\r\n"), sync()],
  "INFO\r\nMSG foo 1 02\r\nhi\r\nPONG\r\n",
  doc="nats-server copies the size token verbatim into MSG (`02`, not `2`)")
T("pub_size_plus_sign_silent_close", [send(CN + "PUB foo +2\r\nhi\r\n"), closed()], "INFO\r\n<EOF>")
T("pub_size_overflow_silent_close", [send(CN + "PUB foo 99999999999999999999\r\n"), closed()], "INFO\r\n<EOF>")
T("hpub_header_len_zero_is_plain_msg",
  [send(CH + "SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\n"), sync()], "INFO\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n",
  doc="HPUB with #hdr 0 is delivered as a plain MSG")
T("hpub_header_content_not_validated",
  [send(CH + "SUB foo 1\r\nHPUB foo 4 6\r\nabcdhi\r\n"), sync()], "INFO\r\nHMSG foo 1 4 6\r\nabcdhi\r\nPONG\r\n")
T("pedantic_does_not_check_reply",
  [send('CONNECT {"verbose":true,"pedantic":true}\r\nSUB foo 1\r\nPUB foo bar.* 2\r\nhi\r\n'), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 bar.* 2\r\nhi\r\nPONG\r\n")
T("non_pedantic_invalid_publish_subject_dropped",
  [send(CNP + "SUB > 1\r\nPUB foo..bar 2\r\nhi\r\nPUB .foo 1\r\nx\r\nPUB foo. 1\r\ny\r\nPUB ok 1\r\nz\r\n"), sync()],
  "INFO\r\nMSG ok 1 1\r\nz\r\nPONG\r\n", doc="no error, no delivery, connection stays open")
T("connect_wrong_field_type_silent_close", [send('CONNECT {"verbose":"yes"}\r\nPING\r\n'), closed()], "INFO\r\n<EOF>")
T("connect_trailing_garbage_silent_close", [send('CONNECT {"verbose":false} trailing\r\nPING\r\n'), closed()],
  "INFO\r\n<EOF>")
T("connect_two_objects_silent_close", [send('CONNECT {"verbose":false}{}\r\nPING\r\n'), closed()], "INFO\r\n<EOF>")
T("connect_json_array_silent_close", [send("CONNECT []\r\nPING\r\n"), closed()], "INFO\r\n<EOF>")
T("connect_no_args_silent_close", [send("CONNECT\r\nPING\r\n"), closed()], "INFO\r\n<EOF>",
  doc="unlike `PUB\\r\\n`, `CONNECT\\r\\n` is a silent close, not Unknown Protocol Operation")
T("connect_protocol_negative", [send('CONNECT {"verbose":false,"protocol":-1}\r\n'), closed()],
  "INFO\r\n-ERR 'invalid client protocol'\r\n<EOF>")
T("connect_protocol_string_silent_close", [send('CONNECT {"verbose":false,"protocol":"1"}\r\n'), closed()],
  "INFO\r\n<EOF>")
T("connect_account_field_auth_violation", [send('CONNECT {"verbose":false,"account":"A"}\r\nPING\r\n'), closed()],
  "INFO\r\n" + AUTHV + "<EOF>")
T("connect_credentials_without_auth_ok",
  [send('CONNECT {"verbose":false,"auth_token":"zz","user":"a","pass":"b"}\r\n'), sync()], "INFO\r\nPONG\r\n")
T("info_from_client_no_args_silent_close", [send(CN + "INFO\r\nPING\r\n"), closed()], "INFO\r\n<EOF>")
T("info_from_client_bad_json_silent_close", [send(CN + "INFO {bad}\r\nPING\r\n"), closed()], "INFO\r\n<EOF>")
T("minus_err_no_args_unknown_op", [send(CN + "-ERR\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")
T("minus_err_lowercase_silent_close", [send(CN + "-err 'x'\r\nPING\r\n"), closed()], "INFO\r\n<EOF>")
T("plus_ok_and_pong_trailing_garbage_ignored", [send(CN + "+OKxyz\r\nPONGxyz\r\n"), sync()], "INFO\r\nPONG\r\n")
T("plus_o_truncated_unknown_op", [send(CN + "+O\r\n"), closed()], "INFO\r\n" + UPO + "<EOF>")
T("payload_lf_only_terminator", [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhi\nPING\r\n"), closed()],
  "INFO\r\n" + UPO + "<EOF>")
T("payload_double_cr_terminator", [send(CN + "SUB foo 1\r\nPUB foo 2\r\nhi\r\rPING\r\n"), closed()],
  "INFO\r\n" + UPO + "<EOF>")
T("unsub_one_of_two_subs", [send(CN + "SUB foo 1\r\nSUB foo 2\r\nUNSUB 1\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG foo 2 1\r\nx\r\nPONG\r\n")
T("max_control_line_args_exactly_at_limit", [send(CN + "SUB " + "a" * 510 + " 1\r\n"), sync()],
  "INFO\r\nPONG\r\n", options=MCL, doc="the limit applies to the argument part: 512 bytes is fine")
T("max_control_line_args_one_over", [send(CN + "SUB " + "a" * 511 + " 1\r\n"), closed()],
  "INFO\r\n-ERR 'maximum control line exceeded'\r\n<EOF>", options=MCL)
T("max_control_line_partial_at_limit_waits", [send(CN + "SUB " + "a" * 512)], "INFO\r\n", options=MCL)
T("max_control_line_partial_one_over", [send(CN + "SUB " + "a" * 513), closed()],
  "INFO\r\n-ERR 'maximum control line exceeded'\r\n<EOF>", options=MCL)
T("max_control_line_connect", [send('CONNECT {"verbose":false,"name":"' + "x" * 600 + '"}\r\n'), closed()],
  "INFO\r\n-ERR 'maximum control line exceeded'\r\n<EOF>", options=MCL)
T("max_control_line_not_applied_to_ping", [send(CN + "PING" + "x" * 600 + "\r\n")], "INFO\r\nPONG\r\n",
  options=MCL, doc="PING ignores everything up to LF, so a long PING line is fine")
T("auth_second_connect_bad_token",
  [send('CONNECT {"verbose":true,"auth_token":"s3cr3t"}\r\nCONNECT {"verbose":true,"auth_token":"bad"}\r\nPING\r\n'),
   closed()], "INFO\r\n+OK\r\n" + AUTHV + "<EOF>", options=TOKEN)
T("auth_user_pass_on_token_server",
  [send('CONNECT {"verbose":true,"user":"s3cr3t","pass":"s3cr3t"}\r\nPING\r\n'), closed()],
  "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN,
  differs="nats-mini accepts the token as the password",
  expect_mini="INFO\r\n+OK\r\nPONG\r\n")
T("auth_connect_just_before_timeout", [opn("a"), sleep(0.6), send('CONNECT {"verbose":false,"auth_token":"s3cr3t"}\r\n'),
                                        sleep(0.8), sync()], "INFO\r\nPONG\r\n", options=TOKEN)
T("first_rtt_ping_after_connect", [send(CN), sleep(3.0)], "INFO\r\nPING\r\n", keep_server_pings=True,
  doc="nats-server PINGs ~2 s (+<=20% jitter) after CONNECT to measure RTT")
T("no_server_ping_without_connect", [send("SUB foo 1\r\n"), sleep(3.0)], "INFO\r\n+OK\r\n", keep_server_pings=True)

T("hpub_sizes_leading_zero",
  [send(CN + "SUB foo 1\r\n", "r"), sync("r"), send(CH + "SUB foo 2\r\n", "h"), sync("h"),
   send(CH + "HPUB foo 012 014\r\nNATS/1.0\r\n\r\nhi\r\n", "p"), sync("p"), sync("h"), sync("r")],
  {"h": "INFO\r\nPONG\r\nHMSG foo 2 012 014\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n",
   "r": "INFO\r\nPONG\r\nMSG foo 1 2\r\nhi\r\nPONG\r\n", "p": "INFO\r\nPONG\r\n"},
  doc="HMSG echoes the size tokens verbatim; the stripped MSG gets a computed size")
T("non_pedantic_verbose_invalid_subject_ok",
  [send(CV + "SUB > 1\r\nPUB foo..bar 1\r\nx\r\n"), sync()], "INFO\r\n+OK\r\n+OK\r\n+OK\r\nPONG\r\n")
T("reply_subject_not_validated", [send(CNP + "SUB a 1\r\nPUB a b..c 1\r\ny\r\n"), sync()],
  "INFO\r\nMSG a 1 b..c 1\r\ny\r\nPONG\r\n")
T("queue_names_arbitrary", [send(CV + "SUB foo q.. 1\r\nSUB foo q* 2\r\nSUB foo > 3\r\nPUB foo 1\r\nx\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 1\r\nx\r\nMSG foo 2 1\r\nx\r\nMSG foo 3 1\r\nx\r\nPONG\r\n",
  sort_msgs=True)
T("utf8_subjects", [send(CN + "SUB f\xc3\xb6\xc3\xb6.* 1\r\nPUB f\xc3\xb6\xc3\xb6.b\xc3\xa4r 1\r\nx\r\n"), sync()],
  "INFO\r\nMSG f\xc3\xb6\xc3\xb6.b\xc3\xa4r 1 1\r\nx\r\nPONG\r\n")
T("unsub_max_leading_zero", [send(CN + "SUB foo 1\r\nUNSUB 1 02\r\n" + "PUB foo 1\r\nx\r\n" * 3), sync()],
  "INFO\r\nMSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\nPONG\r\n")
T("verbose_pub_size_zero", [send(CV + "SUB foo 1\r\nPUB foo 0\r\n\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n+OK\r\nMSG foo 1 0\r\n\r\nPONG\r\n")

T("protocol_1_async_info_after_first_pong_following_connect",
  [send('PING\r\nCONNECT {"verbose":false,"protocol":1}\r\nPING\r\n'), sync()],
  'INFO\r\nPONG\r\nPONG\r\nINFO {"connect_info":true} \r\nPONG\r\n',
  doc="a PONG before CONNECT does not count: the INFO follows the first PONG after a protocol-1 CONNECT")
T("protocol_1_second_connect_no_second_info",
  [send('CONNECT {"verbose":false,"protocol":1}\r\nPING\r\nCONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')],
  'INFO\r\nPONG\r\nINFO {"connect_info":true} \r\nPONG\r\n')
T("second_connect_turns_verbose_off", [send(CV + CN + "SUB foo 1\r\n"), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("second_connect_turns_verbose_on", [send(CN + CV), sync()], "INFO\r\n+OK\r\nPONG\r\n")
T("pedantic_hpub_invalid_subject_still_delivered",
  [send('CONNECT {"verbose":true,"pedantic":true,"headers":true}\r\nSUB foo.* 1\r\nHPUB foo.* 12 14\r\nNATS/1.0\r\n\r\nhi\r\n'),
   sync()],
  "INFO\r\n+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nHMSG foo.* 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n")
T("auth_sub_before_connect", [send("SUB foo 1\r\n"), closed()], "INFO\r\n" + AUTHV + "<EOF>", options=TOKEN)

# ---------------------------------------------------------------------------
# 11. Deliberate differences in default limits (no baseline options)
# ---------------------------------------------------------------------------

T("default_max_payload_in_info", [send("PING\r\n")],
  'INFO {"max_payload":1048576} \r\nPONG\r\n', baseline=False,
  differs="default max_payload: nats-server 1 MiB, nats-mini 2 MiB",
  expect_mini='INFO {"max_payload":2097152} \r\nPONG\r\n')
T("default_max_payload_1_5_mib",
  [send(CN + "SUB foo 1\r\nPUB foo 1572864\r\n" + "z" * 1572864 + "\r\n"), sync()],
  "INFO\r\n-ERR 'Maximum Payload Violation'\r\n<EOF>", baseline=False,
  differs="default max_payload: a 1.5 MiB PUB is within nats-mini's 2 MiB default",
  expect_mini="INFO\r\nMSG foo 1 1572864\r\n" + "z" * 1572864 + "\r\nPONG\r\n")

# Reserved reply prefixes are refused for every client (nats-server's isReservedReply); the
# connection stays. ($GNR. subjects are only refused when gateways are on: not here.)
T("reserved_reply_prefixes_refused",
  [send(CV + "SUB x 1\r\n"
        "PUB x _R_.x 0\r\n\r\n"
        "PUB x _GR_.a 0\r\n\r\n"
        "PUB x $JS.ACK.a 0\r\n\r\n"
        "PUB x _R_ 0\r\n\r\n"
        "PUB x x._R_.y 0\r\n\r\n"
        "PUB $GNR.a 0\r\n\r\n"), sync()],
  "INFO\r\n+OK\r\n+OK\r\n"
  "-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n"
  "-ERR 'Permissions Violation for Publish with Reply of \"_GR_.a\"'\r\n"
  "-ERR 'Permissions Violation for Publish with Reply of \"$JS.ACK.a\"'\r\n"
  "+OK\r\nMSG x 1 _R_ 0\r\n\r\n"
  "+OK\r\nMSG x 1 x._R_.y 0\r\n\r\n"
  "+OK\r\n"
  "PONG\r\n")
