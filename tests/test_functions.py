"""The function model's names and receivers, on synthetic DWARF-free values (no binaries needed):
value methods, closures inside methods, Go <= 1.16's order of a zero-size receiver."""

from dwarfgo.binary import Symbol
from dwarfgo.functions import Function, Parameter, _zero_size_receiver_first, receiver_of
from dwarfgo.gotypes import GoType, Kind


def _t(name: str, size: int = 8) -> GoType:
    return GoType(0, name, Kind.STRUCT if size != 8 else Kind.INT, size)


def _fn(name: str, inputs: list[Parameter], results: list[Parameter] = ()) -> Function:
    visible = [p for p in inputs if not p.is_hidden]
    fn = Function(Symbol(name, 0x1000, 16), None, inputs, list(results))
    fn.receiver_name = receiver_of(name, visible[0] if visible else None)
    return fn


def test_value_method_prints_the_method_name_only():
    # was `func (e go/scanner.Error) Error.Error() string`
    fn = _fn("go/scanner.Error.Error", [Parameter("e", _t("go/scanner.Error", 56), False)],
             [Parameter("~r0", _t("string", 16), True)])
    assert fn.signature() == "func (e go/scanner.Error) Error() string"
    assert fn.short_name == "Error"


def test_pointer_method_and_function_names_unchanged():
    fn = _fn("main.(*Store).Put", [Parameter("st", _t("*main.Store"), False), Parameter("k", _t("string", 16), False)])
    assert fn.signature() == "func (st *main.Store) Put(k string)"
    fn = _fn("main.Store", [Parameter("x", _t("int"), False)])
    assert fn.signature() == "func Store(x int)"


def test_closure_inside_a_method_has_no_receiver():
    # was `func (root string) Import.func3(isGoroot bool)`: a captured variable taken for the receiver
    for name, short in (("go/build.(*Context).Import.func3", "Import.func3"),
                        ("go/build.Context.Import.func3", "Context.Import.func3"),
                        ("runtime.(*pageAlloc).sysGrow.func3", "sysGrow.func3"),
                        ("main.T.M.func1.2", "T.M.func1.2")):
        fn = _fn(name, [Parameter("root", _t("string", 16), False), Parameter("isGoroot", _t("bool", 1), False)])
        assert fn.receiver is None, name
        assert fn.signature() == f"func {short}(root string, isGoroot bool)"


def test_value_method_value_wrapper_still_a_method():
    fn = _fn("main.Pair.String", [Parameter("p", _t("main.Pair", 24), False)])
    assert fn.receiver is not None and fn.receiver.name == "p"


def test_zero_size_receiver_goes_first():
    # Go 1.15 gofmt: main.simplifier.Visit lists `node, s` (s: the zero-size receiver, same offset)
    node = Parameter("node", _t("go/ast.Node", 16), False)
    recv = Parameter("s", _t("main.simplifier", 0), False)
    inputs = [node, recv]
    _zero_size_receiver_first("main.simplifier.Visit", inputs)
    assert inputs == [recv, node]
    fn = _fn("main.simplifier.Visit", inputs, [Parameter("~r1", _t("go/ast.Visitor", 16), True)])
    assert fn.signature() == "func (s main.simplifier) Visit(node go/ast.Node) go/ast.Visitor"


def test_zero_size_argument_of_another_type_stays():
    a = Parameter("a", _t("int"), False)
    z = Parameter("z", _t("main.Empty", 0), False)
    inputs = [a, z]
    _zero_size_receiver_first("main.F", inputs)
    _zero_size_receiver_first("main.simplifier.Visit", inputs)
    assert inputs == [a, z]


def test_blank_result_among_named_ones():
    r = Parameter("~r0", _t("int"), True, blank_result=True)
    ok = Parameter("ok", _t("bool", 1), True)
    fn = _fn("main.InlBlank", [Parameter("x", _t("int"), False)], [r, ok])
    assert fn.signature() == "func InlBlank(x int) (_ int, ok bool)"
    assert fn.display_names()[id(r)] == "r0"
    assert "~r0" in fn.names_of(fn.results)


def _table(types: dict):
    from types import SimpleNamespace

    from dwarfgo.functions import FunctionTable

    return FunctionTable(SimpleNamespace(ptr_size=8), index=object(), type_by_name=types.get)


def test_missing_receiver_of_a_generic_instantiation_wrapper():
    # Go 1.19 cmd/go: sync/atomic.(*Pointer[go/token.File]).Store lists only `val`; its receiver
    # was taken from `val`, and the arguments were one short
    recv_type = _t("*sync/atomic.Pointer[go/token.File]")
    table = _table({"*sync/atomic.Pointer[go/token.File]": recv_type})
    val = Parameter("val", _t("*go/token.File"), False)
    missing = table._missing_receiver("sync/atomic.(*Pointer[go/token.File]).Store", [val])
    assert missing is not None and missing.type is recv_type and missing.name == ""
    # Go 1.22 writes the receiver of such a wrapper: kept as it is
    p = Parameter("p", _t("*sync/atomic.Pointer[go/token.File]"), False)
    assert table._missing_receiver("sync/atomic.(*Pointer[go/token.File]).Store", [p, val]) is None
    # a shape instantiation has its receiver as its first parameter: left alone
    assert table._missing_receiver("sync/atomic.(*Pointer[go.shape.struct {}]).Store", [val]) is None


def test_missing_pointer_receiver_whose_pointer_type_dwarf_lacks():
    # `func (*noCopy) Lock()`: DWARF has sync.noCopy but no *sync.noCopy
    base = _t("sync.noCopy", 0)
    missing = _table({"sync.noCopy": base})._missing_receiver("sync.(*noCopy).Lock", [])
    assert missing is not None
    assert (missing.type.name, missing.type.size, missing.type.elem_offset) == ("*sync.noCopy", 8, base.offset)


def test_missing_pointer_receiver_without_any_type_in_dwarf():
    # Go 1.19 cmd/go: debug/elf.(*zeroReader).ReadAt, no zeroReader type in DWARF at all; its
    # first argument `p []uint8` was taken for the receiver
    p = Parameter("p", _t("[]uint8", 24), False)
    missing = _table({})._missing_receiver("debug/elf.(*zeroReader).ReadAt", [p])
    assert missing is not None and missing.type.name == "*debug/elf.zeroReader" and missing.type.elem is None
    # but a first parameter that is a pointer to a type of that name is the receiver, whatever
    # the spelling of its package (`%2e` in symbols)
    r = Parameter("r", _t("*gopkg.in/yaml.v3.Node"), False)
    assert _table({})._missing_receiver("gopkg.in/yaml%2ev3.(*Node).Decode", [r]) is None


def test_a_local_types_receiver_is_recognised_in_either_spelling():
    """A type declared inside a function is `writerOnly·1` in Go's DWARF and `writerOnly.1` in the
    symbol `mime/multipart.(*writerOnly.1).Write` (cmd/go 1.22 and 1.27): the DWARF receiver is
    the receiver, not a parameter missing a second one."""
    from dwarfgo.functions import _same_type_name

    assert _same_type_name("*mime/multipart.writerOnly·1", ["*mime/multipart.writerOnly.1"])
    assert _same_type_name("*main.T·12", ["*main.T.12"])
    assert not _same_type_name("*main.T·1", ["*main.T.2"])
    assert not _same_type_name("*main.U", ["*main.T"])


def test_promoted_methods_of_an_unnamed_type():
    # Go 1.27 cmd/go: `go:(*struct { encoding/json/v2.MarshalerTo }).MarshalJSONTo` printed as
    # `func MarshalerTo }).MarshalJSONTo(_ *struct {…}, …)`: the type's dot was taken for the package's
    enc = Parameter("~p1", _t("*encoding/json/jsontext.Encoder"), False)
    err = [Parameter("~r0", _t("error", 16), True)]
    fn = _fn("go:(*struct { encoding/json/v2.MarshalerTo }).MarshalJSONTo",
             [Parameter("~p0", _t("*struct { encoding/json/v2.MarshalerTo }"), False), enc], err)
    assert fn.signature() == ("func (_ *struct { encoding/json/v2.MarshalerTo }) "
                              "MarshalJSONTo(_ *encoding/json/jsontext.Encoder) error")
    fn = _fn("go:struct { io.Reader }.Read",
             [Parameter("~p0", _t("struct { io.Reader }", 16), False), Parameter("p", _t("[]uint8", 24), False)])
    assert fn.signature() == "func (_ struct { io.Reader }) Read(p []uint8)"
