# -*- coding: utf-8 -*-
# Copyright: (c) 2026, coursevm.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure arithmetic shared by preflight and server_diagnose: does an image fit a flavor, which flavors fit,
does a quota leave room for a cohort. No SDK objects needed: plain dicts/values in, sentences out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# The collection's byte units, binary as in qemu-img and Nova (disk.py and the modules import them from here).
MIB = 1024 ** 2
GIB = 1024 ** 3


def gib_ceil(num_bytes):
    """Bytes rounded up to whole GiB (Nova's flavor disk unit); None stays None."""
    if num_bytes is None:
        return None
    return -(-int(num_bytes) // GIB)


def image_disk_need_gb(image):
    """The smallest flavor disk (GB) that holds the image: max(min_disk, virtual size, stored size).

    ``image`` is a dict with min_disk (GB), virtual_size and size (bytes); any may be missing or None.
    A qcow2's virtual size is what the root disk must hold; a raw image's stored size is its virtual size.
    """
    need = int(image.get("min_disk") or 0)
    for key in ("virtual_size", "size"):
        gb = gib_ceil(image.get(key))
        if gb is not None:
            need = max(need, gb)
    return need


def volume_fits(volume_gb, image):
    """Plain reasons why a boot volume of ``volume_gb`` GB cannot hold ``image`` (dict); [] if it can."""
    reasons = []
    min_disk = int(image.get("min_disk") or 0)
    if volume_gb < min_disk:
        reasons.append("a %d GB boot volume is smaller than the image's min_disk (%d GB)" % (volume_gb, min_disk))
    virtual = gib_ceil(image.get("virtual_size"))
    if virtual is not None and volume_gb < virtual:
        reasons.append("a %d GB boot volume could not hold the image's virtual size of %d GB (%d bytes)"
                       % (volume_gb, virtual, int(image["virtual_size"])))
    return reasons


def flavor_fits(flavor, image, boot_from_volume=False):
    """A list of plain reasons why ``flavor`` (dict: name, disk GB, ram MB) cannot boot ``image``; [] if it can.

    A flavor with disk 0 means "root disk the size of the image"; Nova lets only volume-backed servers (or
    admins) use it, so without ``boot_from_volume`` it is reported as not fitting. With ``boot_from_volume``
    the root disk is the volume (volume_fits), and only the flavor's RAM counts.
    """
    reasons = []
    disk = int(flavor.get("disk") or 0)
    name = flavor.get("name")
    if disk == 0 and not boot_from_volume:
        reasons.append("flavor %s has a 0 GB root disk, which Nova allows only for servers booted from a volume"
                       % name)
    elif not boot_from_volume:
        min_disk = int(image.get("min_disk") or 0)
        if disk < min_disk:
            reasons.append("flavor %s has a %d GB disk but the image requires at least %d GB (its min_disk)"
                           % (name, disk, min_disk))
        virtual = gib_ceil(image.get("virtual_size"))
        if virtual is not None and disk < virtual:
            reasons.append("flavor %s has a %d GB disk but the image's virtual size is %d GB (%d bytes), so the "
                           "disk could not hold it" % (name, disk, virtual, int(image["virtual_size"])))
        stored = gib_ceil(image.get("size"))
        if stored is not None and disk < stored and (virtual is None or stored > virtual):
            reasons.append("flavor %s has a %d GB disk but the image file alone is %d GB"
                           % (name, disk, stored))
    ram = int(flavor.get("ram") or 0)
    min_ram = int(image.get("min_ram") or 0)
    if ram < min_ram:
        reasons.append("flavor %s has %d MB of RAM but the image requires at least %d MB (its min_ram)"
                       % (name, ram, min_ram))
    return reasons


def flavors_that_fit(flavors, image, max_vcpus=None, max_ram=None, max_disk=None, boot_from_volume=False):
    """Names of the flavors that can boot ``image``, smallest first (by RAM, disk, vCPUs, name).

    The optional ``max_*`` bounds keep only flavors no bigger than a limit (e.g. the one that did not fit
    on any host), so the suggestion is useful and not just "something bigger".
    """
    fitting = []
    for flavor in flavors:
        if flavor_fits(flavor, image, boot_from_volume):
            continue
        if max_vcpus is not None and int(flavor.get("vcpus") or 0) > max_vcpus:
            continue
        if max_ram is not None and int(flavor.get("ram") or 0) > max_ram:
            continue
        if max_disk is not None and int(flavor.get("disk") or 0) > max_disk:
            continue
        fitting.append(flavor)
    fitting.sort(key=lambda f: (int(f.get("ram") or 0), int(f.get("disk") or 0), int(f.get("vcpus") or 0),
                                str(f.get("name"))))
    return [f.get("name") for f in fitting]


def describe_flavor(flavor):
    """'m1.course (2 vCPU, 2048 MB RAM, 20 GB disk)'."""
    return "%s (%s vCPU, %s MB RAM, %s GB disk)" % (flavor.get("name"), flavor.get("vcpus"), flavor.get("ram"),
                                                    flavor.get("disk"))


def quota_shortfalls(needs, quotas):
    """Which quotas are too small for ``needs``.

    ``needs``: {resource: amount the whole cohort needs}. ``quotas``: {resource: {limit, used, reserved}}
    where a limit of -1 (or None) means unlimited. Returns [(resource, need, free, limit, used)] for every
    resource whose free amount (limit - used - reserved) is below the need, in the order of ``needs``.
    """
    short = []
    for resource, need in needs.items():
        quota = quotas.get(resource)
        if quota is None or need <= 0:
            continue
        limit = quota.get("limit")
        if limit is None or int(limit) < 0:
            continue
        used = int(quota.get("used") or 0) + int(quota.get("reserved") or 0)
        free = max(0, int(limit) - used)
        if need > free:
            short.append((resource, need, free, int(limit), used))
    return short
