import os

import pytest


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path)


def random_file(folder, name, size):
    path = os.path.join(folder, name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, data
