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
