"""Contract-test kit for model plugins: the checks every built-in passes, shipped for third parties.

    from recbench.testing import check_model
    def test_my_model():
        check_model("my-model")                      # a model installed through an entry point
        check_model("my-model", plugin_paths=["my_plugin.py"], config={"factors": 8})
"""

from .contract import ContractError, check_model, tiny_dataset

__all__ = ["ContractError", "check_model", "tiny_dataset"]
