"""Image classification data sets as uint8 numpy arrays: CIFAR-10, Fashion-MNIST, image folders.

`load_dataset(spec)` returns a `Dataset` whose images are always (N, H, W, 3) uint8 and whose
labels are int64, whatever the source; `train_val_split` carves a validation set out of the
training images only. The default `cifar10` needs no network: it decodes the JPEG copy shipped in
`nas/_data/cifar10` once and caches the arrays (see `cache_dir`).

One module per source: `cifar10_shipped` (the JPEG copy), `cifar10_original` (the python pickles,
their restricted unpickler and the download), `fashion_mnist`, `imagefolder`; `cache` holds the
decoded arrays, `registry` maps a spec to its loader, `split` draws stratified picks.
"""

from nas.data.cache import cache_dir
from nas.data.cifar10_original import (CIFAR10_BATCH_DIR, CIFAR10_CLASSES, CIFAR10_TARBALL,
                                       CIFAR10_TARBALL_MD5, CIFAR10_URL)
from nas.data.cifar10_shipped import SHIPPED_ARCHIVE_MD5, SHIPPED_LABELS_MD5
from nas.data.dataset import DEFAULT_IMAGE_SIZE, IMAGE_SIZE_RANGE, Dataset
from nas.data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_DEFAULT_DIR
from nas.data.imagefolder import IMAGEFOLDER_PREFIX, IMAGEFOLDER_TEST_FRACTION
from nas.data.registry import dataset_names, load_dataset
from nas.data.split import train_val_split

__all__ = ["CIFAR10_BATCH_DIR", "CIFAR10_CLASSES", "CIFAR10_TARBALL", "CIFAR10_TARBALL_MD5", "CIFAR10_URL",
           "DEFAULT_IMAGE_SIZE", "Dataset", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DEFAULT_DIR",
           "IMAGEFOLDER_PREFIX", "IMAGEFOLDER_TEST_FRACTION", "IMAGE_SIZE_RANGE", "SHIPPED_ARCHIVE_MD5",
           "SHIPPED_LABELS_MD5", "cache_dir", "dataset_names", "load_dataset", "train_val_split"]
