import pytest

from dataengine_trainer.dataset import generate_dataset, load_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    generate_dataset(out, "clear", 24, cameras=2, seed=3)
    return load_dataset(out / "dataset.json")
