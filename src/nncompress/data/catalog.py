"""Which datasets there are, and what each holds (its source module says: `mnist.CONTENTS`, `larochelle.CONTENTS`)."""
from . import larochelle, mnist, variants

CONTENTS = {"mnist": mnist.CONTENTS} | dict.fromkeys(variants.VARIANTS, larochelle.CONTENTS)
DATASETS = tuple(CONTENTS)
# Every dataset's images are of one kind: what a model is sized and checked against before any data is read.
(IMAGES,) = {c.images for c in CONTENTS.values()}
