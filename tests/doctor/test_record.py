"""The Recorder through pycaffe's API: records at the sampled iterations,
from where a solver is, hooks that cost nothing when not sampling."""
import doctor_recipes as recipes


def test_records_follow_the_solver_and_its_sampling(tmp_path, digits_db):
    import kaffe
    from kaffe.doctor import Recorder
    solver = kaffe.get_solver(recipes.write_recipe(tmp_path, db=digits_db))
    solver.step(3)                      # as if resumed at iteration 3
    recorder = Recorder(solver.net, every=2).attach(solver)
    solver.step(4)
    recorder.finish()
    sampled = [r for r in recorder.records if not r.get("losses_only")]
    assert [r["iter"] for r in sampled] == [4, 6]
    losses = [it for r in recorder.records for it, _ in r["losses"]]
    assert losses == [3, 4, 5, 6]
    first = sampled[0]
    assert set(first["params"]) == {"conv1", "conv2", "ip1", "ip2"}
    p = first["params"]["ip1"]
    assert p["weight_norm"] > 0 and p["grad_norm"] > 0
    assert p["update_norm"] > 0
    # In-place relu1 and the ip1 it overwrites are kept apart.
    assert first["tops"]["ip1"]["ip1"]["min"] < 0
    assert first["tops"]["relu1"]["ip1"]["min"] == 0
    assert first["relu"]["relu1"]["units"] == 64
    assert first["labels"]["loss"]["classes"] == 10
    assert first["diffs"]["pool1"]["norm"] > 0
