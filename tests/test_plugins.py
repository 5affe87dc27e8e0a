import types
from dataclasses import dataclass

import pytest

from letras.core import PluginError, UsageError, hookimpl, option
from letras.core.plugins import BUILTIN_PLUGINS, PluginHost, PluginWarning
from letras.core.registry import Registry


def make_plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    return module


def host_with(*plugins, env=None) -> PluginHost:
    host = PluginHost(entry_point_group=None, env=env or {})
    for name, module in plugins:
        host.add(module, name=name)
    return host


def test_builtins_register_every_documented_component():
    host = host_with()
    names = {kind: host.registry(kind).names()
             for kind in ("corpus", "tokenizer", "cell", "model", "trainer", "sampler")}
    assert names == {"corpus": ["ciudades", "file", "municipios", "table"], "tokenizer": ["chars"],
                     "cell": ["lstm", "rnn"], "model": ["generator", "lstm", "rnn"],
                     "trainer": ["word-reset"], "sampler": ["beam", "greedy", "temperature"]}
    assert set(host.plugins) == set(BUILTIN_PLUGINS)


def test_lookup_by_bare_and_qualified_name():
    host = host_with()
    cell = host.registry("cell").get("lstm")
    assert cell.qualified_name == "letras.plugins.recurrent:lstm"
    assert host.registry("cell").get("letras.plugins.recurrent:lstm") is cell


def test_unknown_name_lists_what_exists():
    with pytest.raises(UsageError, match=r"unknown cell 'lstn' \(did you mean 'lstm'\? available: lstm, rnn\)"):
        host_with().registry("cell").get("lstn")


def test_two_plugins_claiming_a_name_is_an_error_only_when_used():
    def register_cells(register):
        register("lstm", "x.y:z")
        register("mine", "x.y:z")

    host = host_with(("other", make_plugin("other", register_cells=register_cells)))
    registry = host.registry("cell")
    assert registry.get("mine").plugin == "other"  # unaffected
    assert registry.get("rnn").plugin == "letras.plugins.recurrent"
    with pytest.raises(UsageError) as info:
        registry.get("lstm")
    assert "'letras.plugins.recurrent:lstm' or 'other:lstm'" in str(info.value)
    assert registry.get("other:lstm").plugin == "other"


def test_register_accepts_callables_and_lazy_strings_with_options():
    @dataclass
    class Opts:
        size: int = option(3)

    def factory(size):
        return ("built", size)

    def register_corpora(register):
        register("lazy", "letras.plugins.corpora:ciudades", help="lazy")
        register("direct", factory, options=Opts)

    registry = host_with(("p", make_plugin("p", register_corpora=register_corpora))).registry("corpus")
    assert registry.get("lazy").build().words()[0] == "MADRID"
    assert registry.get("direct").build(options=Opts(size=5)) == ("built", 5)


@pytest.mark.parametrize("args, message", [
    (("", "a:b"), "bad name"),
    (("a:b", "a:b"), "bad name"),
    (("x", 42), "give a callable or a 'module:attr' string"),
    (("x", "nocolon"), "give a callable or a 'module:attr' string"),
])
def test_bad_registrations_are_reported_as_plugin_failures(args, message):
    def register_cells(register):
        register(*args)

    host = host_with(("bad", make_plugin("bad", register_cells=register_cells)))
    assert host.registry("cell").names() == ["lstm", "rnn"]  # the others still work
    assert message in host.plugins["bad"].error


def test_a_hook_that_raises_loses_only_that_plugin():
    def register_cells(register):
        register("early", "x.y:z")
        raise RuntimeError("boom")

    host = host_with(("broken", make_plugin("broken", register_cells=register_cells)))
    registry = host.registry("cell")
    assert registry.names() == ["lstm", "rnn"]  # what it registered before raising is gone too
    assert "register_cells hook raised RuntimeError: boom" in host.plugins["broken"].error
    with pytest.raises(PluginError, match="plugin 'broken' failed to load"):
        registry.get("broken:anything")


def test_strict_mode_raises(monkeypatch):
    def register_cells(register):
        raise RuntimeError("boom")

    host = host_with(("broken", make_plugin("broken", register_cells=register_cells)),
                     env={"LETRAS_PLUGIN_ERRORS": "raise"})
    with pytest.raises(PluginError, match="boom"):
        host.registry("cell")


def test_misspelled_hook_warns_with_the_closest_name():
    def register_cell(register):
        register("x", "a:b")

    with pytest.warns(PluginWarning, match="did you mean register_cells"):
        host = host_with(("typo", make_plugin("typo", register_cell=register_cell)))
    assert host.plugins["typo"].warnings


def test_hooks_may_take_fewer_arguments():
    calls = []

    def on_train_event():
        calls.append(1)

    from letras.core import TrainEvent

    host = host_with(("quiet", make_plugin("quiet", on_train_event=on_train_event)))
    host.emit(TrainEvent("training_finished", None, 1, 1, {}))
    assert calls == [1]


def test_a_listener_that_raises_is_contained_and_reported_once():
    from letras.core import TrainEvent

    heard = []

    def failing(event):
        raise KeyError("missing column")

    def listening(event):
        heard.append(event.kind)

    host = host_with(("buggy", make_plugin("buggy", on_train_event=failing)),
                     ("logger", make_plugin("logger", on_train_event=listening)))
    with pytest.warns(PluginWarning) as caught:
        for kind in ("epoch_end", "epoch_end", "training_finished"):
            host.emit(TrainEvent(kind, None, 1, 1, {}))
    assert heard == ["epoch_end", "epoch_end", "training_finished"]
    messages = [str(w.message) for w in caught if "buggy" in str(w.message)]
    assert messages == ["plugin 'buggy' failed on a training event (epoch_end): KeyError: 'missing column'; "
                        "training goes on without it"]
    strict = host_with(("buggy", make_plugin("buggy", on_train_event=failing)), env={"LETRAS_PLUGIN_ERRORS": "raise"})
    with pytest.raises(PluginError, match="plugin 'buggy' failed on a training event"):
        strict.emit(TrainEvent("epoch_end", None, 1, 1, {}))


def test_listeners_are_called_through_pluggy_so_hookwrappers_work():
    from letras.core import TrainEvent

    order = []
    module = types.ModuleType("wrapped")

    @hookimpl(hookwrapper=True)
    def on_train_event(event):
        order.append("before")
        yield
        order.append("after")

    module.on_train_event = on_train_event
    host = host_with(("wrapped", module),
                     ("plain", make_plugin("plain", on_train_event=lambda event: order.append("plain"))))
    host.emit(TrainEvent("epoch_end", None, 1, 1, {}))
    # each plugin is called on its own, so a wrapper wraps its own plugin's listener only
    assert order in (["before", "after", "plain"], ["plain", "before", "after"])


def test_register_hooks_are_called_through_pluggy_so_wrappers_and_ordering_work():
    module = types.ModuleType("wrapping")

    @hookimpl(wrapper=True)
    def register_cells(register):
        register("before", "x.y:z")
        result = yield
        register("after", "x.y:z")
        return result

    module.register_cells = register_cells
    first = make_plugin("first", register_cells=lambda register: register("first", "x.y:z"))
    first.register_cells = hookimpl(tryfirst=True)(first.register_cells)
    host = host_with(("wrapping", module), ("first", first))
    assert {"before", "after", "first"} <= set(host.registry("cell").names())
    assert host.plugins["wrapping"].registered["cell"] == ["after", "before"]


def test_a_factory_with_an_options_parameter_receives_the_checked_object():
    @dataclass
    class Opts:
        size: int = option(3, min=1)

    received = {}

    def takes_object(options):
        received["object"] = options

    def takes_keywords(size=0):
        received["size"] = size

    def register_corpora(register):
        register("object", takes_object, options=Opts)
        register("keywords", takes_keywords, options=Opts)

    host = host_with(("p", make_plugin("p", register_corpora=register_corpora)))
    host.registry("corpus").get("object").build(options={"size": 5})
    host.registry("corpus").get("keywords").build(options=Opts(size=7))
    assert received == {"object": Opts(size=5), "size": 7}
    host.registry("corpus").get("object").build()
    assert received["object"] == Opts()  # the defaults, written once in the dataclass
    host.registry("corpus").get("object").build(size=9)  # options given as keywords, as any factory takes them
    assert received["object"] == Opts(size=9)
    host.registry("corpus").get("object").build(options=Opts(size=2), size=4)
    assert received["object"] == Opts(size=4)
    with pytest.raises(PluginError, match="corpus 'object': size: must be at least 1"):
        host.registry("corpus").get("object").build(options={"size": 0})


def test_blocking_a_builtin():
    host = PluginHost(entry_point_group=None, env={"LETRAS_BLOCK_PLUGINS": "letras.plugins.samplers"})
    assert host.registry("sampler").names() == []


def test_loading_order_does_not_matter():
    def register_corpora(register):
        register("zzz", "letras.plugins.corpora:ciudades")

    first = host_with(("a", make_plugin("a", register_corpora=register_corpora)))
    assert first.registry("corpus").names() == ["ciudades", "file", "municipios", "table", "zzz"]


def test_registry_rejects_options_that_are_not_dataclasses():
    registry = Registry("cell")
    with pytest.raises(PluginError, match="not a dataclass"):
        registry.register("x", "a:b", plugin="p", options=dict)
