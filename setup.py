"""tfser: speech emotion recognition with annotator and corpus modelling (TensorFlow / tf-keras).

Runtime pins were verified together in a fresh Python 3.11 venv on CPU (see README). Why these:
  * tensorflow 2.17.1: tensorflow-io 0.37.1's native ops (audio decode/resample) do not load on
    TF 2.18+. Use the ``tensorflow`` wheel, not ``tensorflow-cpu``: tf-keras depends on
    ``tensorflow`` and the two wheels collide.
  * tf-keras 2.17.0: transformers 4.x's TF model classes are tf-keras layers (tfser selects it in
    tfser/_keras_flavour.py). keras 3 is still installed by tensorflow; pinned for reproducibility.
  * transformers 4.57.6: the 5.x line has no TensorFlow model classes.
  * opensmile 2.6.0: the IS10 paralinguistic feature set (the corpus-wise-weights paper's input);
    its SMILExtract binary ships inside the wheel. pandas/pyarrow pinned to releases that work with
    numpy 1.26 (pyarrow 18+ needs numpy 2, which TF 2.17 does not support).
  * keras-tuner 1.4.8: the CWW paper's hyper-parameter sweeps (grid search, distributed
    chief/worker oracle; tfser.tasks.cww.tuning drives it without building Keras 3 models).
  * matplotlib 3.10.8: the CWW paper's Fig. 2 as a PNG (Agg backend, no display needed).
  * scikit-learn 1.9.1: keras-tuner's Bayesian optimisation oracle (its Gaussian process) for
    --algorithm=bayesian sweeps; the version the resolver pairs with numpy 1.26 / scipy 1.17.
"""

import setuptools

RUNTIME = [
    "tensorflow==2.17.1",
    "tf-keras==2.17.0",
    "keras==3.6.0",
    "tensorflow-io==0.37.1",
    "tensorflow-io-gcs-filesystem==0.37.1",
    "tensorflow-probability==0.24.0",
    "transformers==4.57.6",
    "numpy==1.26.4",
    "scipy==1.17.1",
    "absl-py==2.5.1",
    "opensmile==2.6.0",
    "pandas==2.2.3",
    "pyarrow==17.0.0",
    "keras-tuner==1.4.8",
    "matplotlib==3.10.8",
    "scikit-learn==1.9.1",
]

TEST = [
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",
    "hypothesis==6.170.15",
    "kde-diffusion==1.0.5",  # Botev's reference implementation: tests and benchmarks only
]

setuptools.setup(
    name="tfser",
    version="0.1.0",
    description="Speech emotion recognition that models individual annotators and corpora",
    packages=setuptools.find_packages(include=["tfser", "tfser.*", "data_prep", "data_prep.*"]),
    python_requires=">=3.10,<3.12",
    install_requires=RUNTIME,
    extras_require={"test": TEST},
    entry_points={"console_scripts": [
        "tfser-launch=tfser.launch:run_main",
        "tfser-prepare=data_prep.prepare:run_main",
    ]},
)
