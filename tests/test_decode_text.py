"""How the decoder shows a []byte: as text only when every byte is part of printable UTF-8."""

from __future__ import annotations

from dwarfgo.runner.decode import _text_of


def test_bytes_that_are_not_all_text_are_not_shown_as_text():
    # fixtures/demo passes []byte{0xde, 0xad, 0xbe, 0xef}: de ad alone is valid UTF-8 (U+07AD);
    # showing it as that one character would hide two bytes
    assert _text_of(b"\xde\xad\xbe\xef") is None
    assert _text_of(b"caf\xc3") is None  # a whole copy ending inside a character
    assert _text_of(b"a\x00b") is None  # not printable


def test_text_is_shown_whole():
    assert _text_of(b'{"ttl":3600}') == '{"ttl":3600}'
    assert _text_of("héllo\n".encode()) == "héllo\n"


def test_only_a_copy_cut_short_may_end_inside_a_character():
    # --max-str cut the copy after the first byte of "é": that byte is left out, the rest shown
    assert _text_of(b"caf\xc3", cut_short=True) == "caf"
    assert _text_of("日本".encode()[:4], cut_short=True) == "日"
    # bytes that can begin no character are not a cut: still not text
    assert _text_of(b"\xde\xad\xbe\xef", cut_short=True) is None


def test_elements_not_read_are_counted_without_an_empty_item_before_them():
    # seen on cmd/compile: a slice beyond --depth printed as `[]T{, …1096 more}(len 1096, …)`
    from types import SimpleNamespace

    from dwarfgo.emit.plan import INT, HEX, Read, Scalar, SliceNode
    from dwarfgo.runner.decode import Decoder

    t = SimpleNamespace(name="[]main.Object")
    none_read = SliceNode(t, ptr=Read(0, HEX, "p"), len=Read(1, INT, "l"), cap=Read(2, INT, "c"))
    raw = {0: "c000010000", 1: "1096", 2: "1096"}
    _, text = Decoder([])._node(none_read, raw)
    assert text == "[]main.Object{…1096 more}(len 1096, cap 1096)"
    one_read = SliceNode(t, ptr=Read(0, HEX, "p"), len=Read(1, INT, "l"), cap=Read(2, INT, "c"),
                         items=[Scalar(None, read=Read(3, INT, "i"))])
    _, text = Decoder([])._node(one_read, {**raw, 3: "7"})
    assert text == "[]main.Object{7, …1095 more}(len 1096, cap 1096)"
