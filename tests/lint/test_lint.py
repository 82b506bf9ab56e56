"""Every lint rule fires on the hazard and stays quiet on the correct code next to it."""

import textwrap

import pytest

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Source
from reprokit.lint.engine import RULES, hazards_for, lint_paths, lint_source

CASES = {
    "RK101": (
        [
            "import numpy as np\nrng = np.random.default_rng()",
            "import numpy\nrng = numpy.random.default_rng(None)",
            "from numpy.random import default_rng\nrng = default_rng()",
            "import numpy as np\nstate = np.random.RandomState()",
            "import random\nr = random.Random()",
            "import random\nr = random.SystemRandom()",
            "from random import SystemRandom\nr = SystemRandom(42)  # the seed is ignored",
            "import numpy as np\ng = np.random.Generator(np.random.PCG64())",
        ],
        [
            "import numpy as np\nrng = np.random.default_rng(0)",
            "import numpy as np\nrng = np.random.default_rng(seed=args.seed)",
            "import random\nr = random.Random(42)",
            "import numpy as np\ng = np.random.Generator(np.random.PCG64(7))",
            "import tensorflow as tf\ng = tf.random.Generator.from_seed(1)",
            "import numpy as np\nx = np.random.rand(3)",
        ],
    ),
    "RK102": (
        ["import tensorflow as tf\ng = tf.random.Generator.from_non_deterministic_state()"],
        ["import tensorflow as tf\ng = tf.random.Generator.from_seed(3)"],
    ),
    "RK103": (
        [
            "import time, keras\nkeras.utils.set_random_seed(int(time.time()))",
            "import numpy as np, os\nrng = np.random.default_rng(int.from_bytes(os.urandom(4), 'little'))",
            "import tensorflow as tf, uuid\ntf.random.set_seed(uuid.uuid4().int % 1000)",
            "import secrets, random\nrandom.seed(secrets.randbits(32))",
            "import datetime, numpy as np\nnp.random.seed(datetime.datetime.now().microsecond)",
        ],
        [
            "import time, keras\nstart = time.time()\nkeras.utils.set_random_seed(42)",
            "import time\nprint(time.time())",
            "import numpy as np\nnp.random.seed(1234)",
        ],
    ),
    "RK104": (
        [
            "ds = ds.interleave(f, num_parallel_calls=8, deterministic=False)",
            "ds = ds.map(f, num_parallel_calls=-1, deterministic=False)",
            "options = tf.data.Options()\noptions.deterministic = False",
            "options.experimental_deterministic = False",
        ],
        [
            "ds = ds.interleave(f, num_parallel_calls=8, deterministic=True)",
            "ds = ds.map(f, num_parallel_calls=-1)",
            "options.deterministic = True",
        ],
    ),
    "RK105": (
        [
            "import os\nfor name in os.listdir(folder):\n    load(name)",
            "import glob\nfiles = [load(p) for p in glob.glob('*.png')]",
            "import glob\nfiles = glob.glob('data/*.csv')\nfor f in files:\n    read(f)",
            "from pathlib import Path\nfor p in Path('data').iterdir():\n    read(p)",
            "for p in data_dir.glob('*.png'):\n    read(p)",
            "import tensorflow as tf\nnames = list(tf.io.gfile.listdir(root))",
            "import tensorflow as tf\nds = tf.data.Dataset.list_files('*.tfrecord')",
            # the order flows into data or training through the loop body
            "import os\npaths = []\nfor name in os.listdir(folder):\n    paths.append(os.path.join(folder, name))\n"
            "ds = tf.data.Dataset.from_tensor_slices(paths)",
            "import glob\ndef images():\n    for p in glob.glob('*.png'):\n        yield load(p)",
            "import os\nwith open('files.txt', 'w') as out:\n"
            "    for name in os.listdir(folder):\n        out.write(name)",
            "import os\nfor name in os.listdir(folder):\n    loss = model.train_on_batch(*load(name))",
            "import os\nfor name in os.listdir(folder):\n"
            "    if name.endswith('.ckpt'):\n        ckpt = name\n        break",
            "import os\nindex = {}\nfor name in os.listdir(folder):\n    index[name] = len(index)",
            "import glob\npaths = []\nfor p in glob.glob('*.png'):\n    paths += [p]",
            "import os\nfor i, name in enumerate(os.listdir(folder)):\n    labels[name] = i",
            "import glob\nfiles = glob.glob('tmp/*')\nfor f in files:\n"
            "    if f.endswith('.tmp'):\n        os.remove(f)\n    else:\n        read(f)",
            "import glob\nimages = (load(p) for p in glob.glob('*.png'))",
            "import os\ni = 0\nfor name in os.listdir(folder):\n    x[i] = load(name)\n    i += 1",
        ],
        [
            "import os\nfor name in sorted(os.listdir(folder)):\n    load(name)",
            # loops whose result cannot depend on the order: clean-up, counting, filing by name, logging
            "import os\nfor name in os.listdir(folder):\n    os.remove(os.path.join(folder, name))",
            "import os, shutil\nfor name in os.listdir(folder):\n    path = os.path.join(folder, name)\n"
            "    if os.path.isdir(path):\n        shutil.rmtree(path)\n    else:\n        os.unlink(path)",
            "from pathlib import Path\nfor p in Path('cache').glob('*.tmp'):\n    p.unlink()",
            "import os\nn = 0\nfor name in os.listdir(folder):\n    if name.endswith('.png'):\n        n += 1",
            "import os\nsizes = {}\nfor name in os.listdir(folder):\n"
            "    sizes[name] = os.path.getsize(os.path.join(folder, name))",
            "import glob, os\nseen = set()\nfor p in glob.glob('*.csv'):\n    seen.add(os.path.basename(p))",
            "import os, logging\nfor name in os.listdir(folder):\n    print(name)\n    logging.info('found %s', name)",
            "import glob\nfiles = glob.glob('tmp/*')\nfor f in files:\n    os.remove(f)",
            "import os\ncounts = {}\nfor name in os.listdir(folder):\n    counts[name.split('_')[0]] = 1",
            "import os\nsizes = {n: os.path.getsize(n) for n in os.listdir(folder)}",
            "import os\npngs = sorted(f for f in os.listdir(folder) if f.endswith('.png'))",
            "import glob\ntotal = sum(os.path.getsize(p) for p in glob.glob('*.npy'))",
            "import os, shutil\nfor name in os.listdir(folder):\n    shutil.copy(os.path.join(folder, name), backup)",
            "import glob\nfiles = glob.glob('data/*.csv')\nfiles.sort()\nfor f in files:\n    read(f)",
            "import glob\nfiles = glob.glob('data/*.csv')\nfor f in sorted(files):\n    read(f)",
            "import os\nn = len(os.listdir(folder))",
            "import os\nif 'a.txt' in os.listdir(folder):\n    pass",
            "names = {p.name for p in Path('x').iterdir()}",
            "import tensorflow as tf\nds = tf.data.Dataset.list_files('*.tfrecord', shuffle=False)",
            "import tensorflow as tf\nds = tf.data.Dataset.list_files('*.tfrecord', seed=3)",
            "import re\nfor m in pattern.glob(text):\n    pass",
        ],
    ),
    "RK106": (
        [
            "for label in {'cat', 'dog', 'bird'}:\n    classes.append(label)",
            "classes = list(set(['cat', 'dog']))",
            "vocab = list(set(text.split()))",
            "index = {w: i for i, w in enumerate(set(text.split()))}",
        ],
        [
            "classes = sorted({'cat', 'dog', 'bird'})",
            "ids = list(set([3, 1, 2]))",
            "vocab = sorted(set(text.split()))",
            "if word in {'a', 'b'}:\n    pass",
            "seen = set(text.split())",
            "for name in {'a.tmp', 'b.tmp'}:\n    os.remove(name)",
        ],
    ),
    "RK107": (
        ["import tensorflow as tf\ntf.config.threading.set_intra_op_parallelism_threads = 1"],
        ["import tensorflow as tf\ntf.config.threading.set_intra_op_parallelism_threads(1)"],
    ),
    "RK108": (
        [
            "model.fit(seq, workers=4, use_multiprocessing=True)",
            "class Data(keras.utils.PyDataset):\n    pass\nd = Data(workers=4, use_multiprocessing=True)",
        ],
        ["model.fit(seq, workers=4, use_multiprocessing=False)", "model.fit(seq)"],
    ),
    "RK109": (
        [
            "import os\nos.environ['PYTHONHASHSEED'] = '0'",
            "import tensorflow as tf\nimport os\nos.environ['TF_DETERMINISTIC_OPS'] = '1'",
            "import tensorflow as tf\nimport os\nos.environ.setdefault('TF_DETERMINISTIC_OPS', '1')",
        ],
        [
            "import os\nos.environ['TF_DETERMINISTIC_OPS'] = '1'\nimport tensorflow as tf",
            "import os\nos.environ['CUDA_VISIBLE_DEVICES'] = ''",
            "import os\nseed = os.environ.get('PYTHONHASHSEED')",
        ],
    ),
    "RK110": (
        [
            "import tensorflow as tf\nds = ds.map(lambda x: x + tf.random.normal(tf.shape(x)), num_parallel_calls=4)",
            "import tensorflow as tf\ndef aug(x):\n    return tf.image.random_flip_left_right(x)\n"
            "ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE)",
            "import keras\nflip = keras.Sequential([keras.layers.RandomFlip('horizontal')])\n"
            "ds = ds.map(lambda x, y: (flip(x), y), num_parallel_calls=tf.data.AUTOTUNE)",
            "from keras import layers\ndef aug(x):\n    return layers.RandomRotation(0.1)(x)\n"
            "ds = ds.map(aug, tf.data.AUTOTUNE)",
        ],
        [
            "import tensorflow as tf\nds = ds.map(lambda x: x + tf.random.normal(tf.shape(x)))",  # sequential
            "import tensorflow as tf\nds = ds.map(lambda x: x + tf.random.normal(tf.shape(x)), num_parallel_calls=1)",
            "import tensorflow as tf\nds = ds.map(lambda x: tf.random.stateless_normal(tf.shape(x), seed=[1, 2]),"
            " num_parallel_calls=4)",
            "import tensorflow as tf\nds = ds.map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE)",
            "import keras\nflip = keras.layers.RandomFlip('horizontal')\nmodel = keras.Sequential([flip])\n"
            "ds = ds.map(lambda x: x / 255, num_parallel_calls=8)",
        ],
    ),
    "RK201": (
        [
            "import tensorflow as tf\ny = tf.image.resize(x, (64, 64), method='nearest')",
            "import tensorflow as tf\ny = tf.image.resize(x, size, tf.image.ResizeMethod.NEAREST_NEIGHBOR)",
            "import tensorflow as tf\ny = tf.compat.v1.image.resize_nearest_neighbor(x, (8, 8))",
            "import keras\ny = keras.ops.image.resize(x, (8, 8), interpolation='nearest')",
            "import keras\nup = keras.layers.Resizing(64, 64, interpolation='nearest')",
            "from keras import layers\n"
            "model = keras.Sequential([layers.Conv2D(8, 3), layers.Resizing(8, 8, interpolation='nearest')])",
            "import tf_keras as keras\nx = keras.layers.UpSampling2D()(x)",
            "from tf_keras import layers\nx = layers.UpSampling2D(size=(2, 2), interpolation='nearest')(x)",
            "import os\nos.environ['TF_USE_LEGACY_KERAS'] = '1'\nimport tensorflow as tf\n"
            "x = tf.keras.layers.UpSampling2D()(x)",
        ],
        [
            "import tensorflow as tf\ny = tf.image.resize(x, (64, 64))",
            "import tensorflow as tf\ny = tf.image.resize(x, (64, 64), method='bilinear')",
            "import keras\nx = keras.layers.UpSampling2D()(x)",  # Keras 3 repeats pixels: no resize op
            "import tensorflow as tf\nx = tf.keras.layers.UpSampling2D()(x)",  # tf.keras is Keras 3 (TF 2.16+)
            "from tf_keras import layers\nx = layers.UpSampling2D(interpolation='bilinear')(x)",
            "import keras\nup = keras.layers.Resizing(64, 64)",
            "import tensorflow as tf\nds = ds.map(lambda x, y: (tf.image.resize(x, (64, 64), method='nearest'), y))",
            "import tensorflow as tf\ndef prep(x, y):\n    return tf.image.resize(x, (64, 64), method='nearest'), y\n"
            "ds = ds.map(prep)",
            "import keras\nresize = keras.layers.Resizing(64, 64, interpolation='nearest')\n"
            "ds = ds.map(lambda x, y: (resize(x), y))",
            "import keras\n"
            "model = keras.Sequential([keras.layers.Resizing(64, 64, interpolation='nearest'), keras.layers.Dense(1)])",
            "import keras\ninputs = keras.Input((None, None, 3))\n"
            "x = keras.layers.Resizing(64, 64, interpolation='nearest')(inputs)",
            "import jax\ny = jax.image.resize(x, (8, 8), method='nearest')",
        ],
    ),
    "RK202": (
        [
            "import tensorflow as tf\nrois = tf.image.crop_and_resize(features, boxes, box_indices, (7, 7))",
            "import tensorflow as tf\nclass RoiAlign(tf.keras.layers.Layer):\n    def call(self, x, boxes, ids):\n"
            "        return tf.image.crop_and_resize(x, boxes, ids, (7, 7))",
        ],
        [
            "import tensorflow as tf\n"
            "ds = ds.map(lambda x: tf.image.crop_and_resize(x[None], [[0, 0, 1, 1]], [0], (9, 9)))",
            "import tensorflow as tf\ny = tf.image.resize_with_crop_or_pad(x, 64, 64)",
        ],
    ),
    "RK203": (
        [
            "import tensorflow as tf\ny = tf.image.adjust_contrast(x, 1.5)",
            "import tensorflow as tf\ny = tf.image.random_contrast(x, 0.8, 1.2, seed=1)",
            "import tf_keras\n"
            "model = tf_keras.Sequential([tf_keras.layers.RandomContrast(0.2), tf_keras.layers.Conv2D(8, 3)])",
            "import tf_keras\naugment = tf_keras.layers.RandomContrast(0.2)\nx = augment(inputs)",
        ],
        [
            "import keras\nmodel = keras.Sequential([keras.layers.RandomContrast(0.2), keras.layers.Conv2D(8, 3)])",
            "import tensorflow as tf\nds = ds.map(lambda x: tf.image.random_contrast(x, 0.8, 1.2, seed=1))",
            "import tf_keras\naugment = tf_keras.layers.RandomContrast(0.2)\n"
            "ds = ds.map(lambda x, y: (augment(x, training=True), y))",
            "import tensorflow as tf\ny = tf.image.adjust_brightness(x, 0.1)",
        ],
    ),
    "RK204": (
        [
            "from tf_keras import layers\nbn = layers.BatchNormalization()\nx = bn(x, training=False)",
            "import tf_keras\nx = tf_keras.layers.BatchNormalization()(x, training=False)",
            "import tf_keras as keras\nclass Block(keras.layers.Layer):\n    def __init__(self):\n"
            "        super().__init__()\n        self.bn = keras.layers.BatchNormalization()\n"
            "    def call(self, x):\n        return self.bn(x, training=False)",
            "import tensorflow as tf\ny, m, v = tf.compat.v1.nn.fused_batch_norm(x, s, o, m, v, is_training=False)",
        ],
        [
            "from tf_keras import layers\nbn = layers.BatchNormalization()\nbn.trainable = False\n"
            "x = bn(x, training=False)",
            "from tf_keras import layers\nbn = layers.BatchNormalization()\nx = bn(x)",
            "from tf_keras import layers\nbn = layers.BatchNormalization(fused=False)\nx = bn(x, training=False)",
            "from tf_keras import layers\nx = layers.BatchNormalization(trainable=False)(x, training=False)",
            # Keras 3's BatchNormalization is not fused
            "from keras import layers\nbn = layers.BatchNormalization()\nx = bn(x, training=False)",
            "import tensorflow as tf\nx = tf.keras.layers.BatchNormalization()(x, training=False)",
            "import tensorflow as tf\ny = tf.compat.v1.nn.fused_batch_norm(x, s, o)",
        ],
    ),
    "RK205": (
        [
            "import tensorflow as tf\ncounts = tf.math.bincount(labels)",
            "import tensorflow as tf\nsums = tf.math.bincount(ids, weights=w)",
            "import tensorflow as tf\ncounts = tf.compat.v1.bincount(labels)",
            "import keras\ncounts = keras.ops.bincount(labels)",
        ],
        [
            "import numpy as np\ncounts = np.bincount(labels)",
            "import tensorflow as tf\nsums = tf.math.unsorted_segment_sum(w, ids, 10)",
            "import tensorflow as tf\nds = ds.map(lambda x: tf.math.bincount(x, minlength=10))",
            "import tensorflow as tf\ncounts = tf.sparse.bincount(labels)",
        ],
    ),
    "RK206": (
        [
            "import tensorflow as tf\ny = tf.sparse.sparse_dense_matmul(a, b)",
            "import tensorflow as tf\ny = tf.compat.v1.sparse_tensor_dense_matmul(a, b)",
            "import tensorflow as tf\ny = tf.compat.v1.sparse.matmul(a, b)",
        ],
        [
            "import tensorflow as tf\ny = tf.linalg.matmul(tf.sparse.to_dense(a), b)",
            "import tensorflow as tf\nds = ds.map(lambda a: tf.sparse.sparse_dense_matmul(a, w))",
            "from mylib import sparse_dense_matmul\ny = sparse_dense_matmul(a, b)",
        ],
    ),
}


def codes(source: str) -> list[str]:
    return [f.code for f in lint_source(textwrap.dedent(source))]


def test_every_rule_has_positive_and_negative_cases():
    assert set(CASES) == {rule.code for rule in RULES}
    assert all(positive and negative for positive, negative in CASES.values())


@pytest.mark.parametrize(("code", "source"), [(c, s) for c, (pos, _) in CASES.items() for s in pos])
def test_the_rule_fires_on_the_hazard(code, source):
    assert code in codes(source), source


@pytest.mark.parametrize(("code", "source"), [(c, s) for c, (_, neg) in CASES.items() for s in neg])
def test_the_rule_stays_quiet_on_correct_code(code, source):
    assert code not in codes(source), source


def test_every_gpu_rule_says_gpu_and_how_to_fix_it():
    family = [rule for rule in RULES if rule.code.startswith("RK2")]
    assert [rule.code for rule in family] == ["RK201", "RK202", "RK203", "RK204", "RK205", "RK206"]
    for rule in family:
        assert rule.title.startswith("GPU: ") and rule.source is Source.NONDETERMINISTIC_OPS
        for source in CASES[rule.code][0]:
            (finding,) = [f for f in lint_source(source) if f.code == rule.code]
            assert "GPU" in finding.message and "CPU" in finding.message, finding.message
            assert "UnimplementedError" in finding.message and "op determinism" in finding.message
            assert finding.fix, rule.code


def test_gpu_only_hazards_come_last_among_the_likely_causes():
    source = (
        "import tensorflow as tf\n"
        "counts = tf.math.bincount(labels)\n"
        "ds = ds.map(f, num_parallel_calls=4, deterministic=False)\n"
    )
    causes = hazards_for(Source.NONDETERMINISTIC_OPS, lint_source(source))
    assert [c.code for c in causes] == ["RK104", "RK205"]


def test_a_finding_says_where_what_and_how_to_fix_it():
    line = "rng  = np.random.default_rng()"
    (finding,) = lint_source(f"import numpy as np\n\n{line}\n", "train.py")
    col = line.index("np.random") + 1  # 1-based, like every editor
    assert (finding.path, finding.line, finding.col, finding.code) == ("train.py", 3, col, "RK101")
    assert str(finding) == (
        f"train.py:3:{col}: RK101 np.random.default_rng() without a seed draws fresh OS entropy in every run. "
        "Fix: default_rng(seed)"
    )


def test_ignore_comments_silence_all_rules_or_the_named_ones():
    source = (
        "import numpy as np\n"
        "a = np.random.default_rng()  # reprokit: ignore\n"
        "b = np.random.default_rng()  # reprokit: ignore[RK105]\n"
    )
    assert [(f.line, f.code) for f in lint_source(source)] == [(3, "RK101")]
    assert lint_source("import numpy as np\nc = np.random.default_rng()  # reprokit: ignore[RK101, RK105]\n") == []


def test_select_and_ignore_choose_rules_and_unknown_codes_are_bad_input(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import os, random\nr = random.Random()\nfor f in os.listdir('.'):\n    load(f)\n")
    assert [f.code for f in lint_paths([tmp_path])] == ["RK101", "RK105"]
    assert [f.code for f in lint_paths([script], select=["RK105"])] == ["RK105"]
    assert [f.code for f in lint_paths([script], ignore=["RK105"])] == ["RK101"]
    with pytest.raises(UsageError, match="expected rule codes among RK101"):
        lint_paths([script], select=["RK999"])
    with pytest.raises(UsageError, match="no such file or folder"):
        lint_paths([tmp_path / "missing.py"])


def test_a_file_that_does_not_parse_is_bad_input():
    with pytest.raises(UsageError, match=r"cannot lint bad\.py: syntax error at line 1"):
        lint_source("def (", "bad.py")


def test_the_examples_are_linted_as_their_docstrings_say():
    from helpers import EXAMPLES

    found = {(f.path.rsplit("/", 1)[-1], f.code) for f in lint_paths([EXAMPLES])}
    assert ("unseeded_augmentation.py", "RK101") in found
    assert ("nondeterministic_pipeline.py", "RK104") in found
    assert ("jax_stateless_loop.py", "RK101") in found
    assert ("jax_clock_key.py", "RK103") in found
    flagged = {"unseeded_augmentation.py", "nondeterministic_pipeline.py", "jax_stateless_loop.py", "jax_clock_key.py"}
    assert not {path for path, _ in found} - flagged


def test_the_lint_command_prints_findings_and_exits_1(tmp_path):
    from helpers import EXAMPLES, reprokit

    result = reprokit("lint", EXAMPLES / "nondeterministic_pipeline.py")
    assert result.returncode == 1
    assert "nondeterministic_pipeline.py:41:90: RK104 interleave(deterministic=False)" in result.stdout
    clean = tmp_path / "clean.py"
    clean.write_text("import numpy as np\nrng = np.random.default_rng(0)\n")
    as_json = reprokit("lint", clean, "--format", "json")
    assert (as_json.returncode, as_json.report) == (0, [])
    assert reprokit("lint", tmp_path / "missing.py").returncode == 2
