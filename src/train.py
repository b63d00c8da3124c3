"""`nncompress-train` from a checkout, without installing (the app is nncompress.train).

    python src/train.py                                  # defaults: conf/train.yaml
    python src/train.py protocol=paper seeds=[0,1,2] model.hidden=30
    python src/train.py -m dataset=mnist,mnist_rot       # a Hydra multirun sweep, under multirun/
"""
from nncompress.train import run

if __name__ == "__main__":
    run()
