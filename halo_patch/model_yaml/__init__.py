"""The model yaml apply writes: which bases a target offers (bases), where HaloAttention goes and how
every `from` index moves (graph), channels per scale (channels), the in-place text edit (text), and
the planner that ties them together and proves the result (planner).

Adding a family or a placement touches this package and its tests only.
"""

from halo_patch.model_yaml.bases import ADOPT_SUFFIX, SUFFIX, BaseYaml, list_bases, output_path, resolve_base
from halo_patch.model_yaml.planner import InsertedLayer, YamlPlan, name_for_build, plan_model_yaml

__all__ = ["ADOPT_SUFFIX", "SUFFIX", "BaseYaml", "InsertedLayer", "YamlPlan", "name_for_build", "list_bases", "output_path", "plan_model_yaml", "resolve_base"]
