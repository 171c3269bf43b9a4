"""Which layers a NetState admits (Caffe's include/exclude rules).

:func:`set_net_state` writes a phase, level and stages into a NetParameter's
state; :func:`filter_net` keeps the layers whose rules admit that state
(Caffe's ``Net::FilterNet``); :func:`layer_error` and
:func:`unknown_bottom` are the located errors of net construction.
"""
import difflib
import logging

from ..errors import KaffeConfigError
from ..proto import caffe_pb2

log = logging.getLogger("kaffe")


def set_net_state(param, phase=None, level=None, stages=None,
                  replace_stages=False):
    """Set ``param.state`` (a NetParameter's) for building a net.

    Args:
        phase, level: set when not None.
        stages: appended to the state's stages (pycaffe's Net), or, with
            ``replace_stages``, put in their place (explain and viz, which
            select layers exactly as their flags say).
    """
    if phase is not None:
        param.state.phase = phase
    if level is not None:
        param.state.level = level
    if replace_stages:
        del param.state.stage[:]
    if stages:
        param.state.stage.extend(stages)
    return param


def state_meets_rule(state, rule, layer_name):
    """Caffe's StateMeetsRule: does NetState ``state`` satisfy ``rule``?"""
    if rule.HasField("phase") and rule.phase != state.phase:
        log.info("The NetState phase (%d) differed from the phase (%d) "
                 "specified by a rule in layer %s", state.phase, rule.phase,
                 layer_name)
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        log.info("The NetState level (%d) is above the min_level (%d) "
                 "specified by a rule in layer %s", state.level,
                 rule.min_level, layer_name)
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        log.info("The NetState level (%d) is above the max_level (%d) "
                 "specified by a rule in layer %s", state.level,
                 rule.max_level, layer_name)
        return False
    stages = set(state.stage)
    for stage in rule.stage:
        if stage not in stages:
            log.info("The NetState did not contain stage '%s' specified by a "
                     "rule in layer %s", stage, layer_name)
            return False
    for stage in rule.not_stage:
        if stage in stages:
            log.info("The NetState contained a not_stage '%s' specified by a "
                     "rule in layer %s", stage, layer_name)
            return False
    return True


def layer_included(state, layer_param):
    """Whether a layer's include/exclude rules admit NetState ``state``.

    No include rules: included unless an exclude rule matches; otherwise
    included if any include rule matches.
    """
    included = not len(layer_param.include)
    for rule in layer_param.exclude:
        if included and state_meets_rule(state, rule, layer_param.name):
            included = False
    for rule in layer_param.include:
        if not included and state_meets_rule(state, rule, layer_param.name):
            included = True
    return included


def filter_net(param, source=None):
    """Keep the layers whose include/exclude rules admit ``param.state``.

    Returns (filtered NetParameter, line of each kept layer or None).
    """
    filtered = caffe_pb2.NetParameter()
    filtered.CopyFrom(param)
    del filtered.layer[:]
    lines = []
    seen = {}
    for layer_param in param.layer:
        name = layer_param.name
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        line = source.line(name, occurrence) if source else None
        if len(layer_param.include) and len(layer_param.exclude):
            raise layer_error(
                layer_param, (source.path if source else None, line),
                "has both include and exclude rules",
                fix="specify either include rules or exclude rules, not both")
        if layer_included(param.state, layer_param):
            filtered.layer.add().CopyFrom(layer_param)
            lines.append(line)
    return filtered, lines


def layer_error(layer_param, source, problem, cls=KaffeConfigError, **kw):
    """A ``cls`` error located at ``layer_param``, defined at ``source``
    ((file, line) or None)."""
    file, line = source if source else (None, None)
    return cls(problem, file=file, line=line, layer=layer_param.name,
               layer_type=layer_param.type, **kw)


def unknown_bottom(layer_param, source, index, name, blob_index):
    """The error for bottom ``index`` naming a blob that is not available;
    ``blob_index`` holds the names produced so far (for suggestions)."""
    if name in blob_index:
        problem = (f"names blob '{name}', which an earlier layer consumed in "
                   "place or is no longer available")
        fix = "check the order of the layers"
    else:
        problem = (f"names unknown blob '{name}' (no earlier layer produces "
                   "it in this phase)")
        close = difflib.get_close_matches(name, list(blob_index), n=3)
        fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
               if close else "define a layer with this top before this layer, "
               "or check the include/exclude rules")
    return layer_error(layer_param, source, problem,
                        field=f"bottom[{index}]", fix=fix)
