/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * perm.c: which permissions a node takes on its protocol file and which it
 * lets other users of the file take, chosen so that QEMU 7.2 and libqblock
 * see each other's use of an image exactly as two QEMU tools would.
 *
 * What QEMU 7.2 does, as observed on Debian 12 (qemu-io/qemu-img/qemu-nbd
 * 7.2.22, Linux 6.x, ext4), by holding images with `qemu-io -c 'sleep N'`
 * or qemu-nbd and reading /proc/locks, and by tracing fcntl with strace:
 *
 *  1. Locks are Linux open file description locks (F_OFD_SETLK, F_RDLCK,
 *     one byte each, whence SEEK_SET) on the image's own descriptor; there
 *     is no separate lock descriptor in 7.2. QEMU first tests for OFD
 *     support with F_OFD_GETLK on /dev/null.
 *  2. Permission bit n held = shared lock on byte 100+n; bit n not shared =
 *     shared lock on byte 200+n. Only bits 0..3 are ever locked
 *     (consistent read, write, write unchanged, resize): bytes 100..103 and
 *     200..203.
 *  3. Conflict test: the locks are taken first, then for each bit held it
 *     asks F_OFD_GETLK with a write lock on 200+n, and for each bit not
 *     shared on 100+n; any lock found there is a conflict. Messages:
 *     `Failed to get "write" lock` (we want write, someone does not share
 *     it) and `Failed to get shared "write" lock` (we do not share write,
 *     someone writes), followed by "Is another process using the image
 *     [x]?".
 *  4. Bytes held, by role ("+" = 100+n held, "-" = 200+n held):
 *       qemu-io -f raw (read-write)            100 101
 *       qemu-io -f raw -r                      100
 *       qemu-io -f qcow2 (read-write)          100 101 103, 201 203
 *       qemu-io -f qcow2 -r                    100, 201 203
 *       qemu-io -U -r (any format)             100 only (shares all; -U
 *                                              with read-write is refused)
 *       qemu-nbd -f raw [-r]                   as qemu-io, plus 203 (an
 *                                              export's size is fixed)
 *       qemu-nbd -f qcow2 [-r]                 as qemu-io -f qcow2
 *       backing file of a qcow2 overlay        as its format opened -r
 *                                              (raw: 100; qcow2: 100, 201 203)
 *       qemu-img create (file level)           101 103, 203 while it
 *                                              truncates (open O_RDWR|O_CREAT,
 *                                              no O_TRUNC, then ftruncate 0)
 *       qemu-img info                          no I/O permissions at all:
 *                                              raw none, qcow2 201 203
 *       qemu-img check/map/compare             as qemu-io -r
 *  5. Consequences observed: two read-write qemu-io on one raw image both
 *     open (raw shares write); a read-write or even read-only qcow2 open
 *     of an image held read-write as qcow2 is refused, a read-only raw open
 *     of it is allowed; qemu-img create on a raw image held read-write as
 *     raw succeeds, on one held as qcow2 fails with `Failed to get "write"
 *     lock`; qemu-img info -U and qemu-io -U -r always open.
 *
 * So a format node takes on its file:
 *  - perm: consistent read; write when opened read-write; resize as well
 *    when read-write and the format has metadata (drv->shares_write false:
 *    such formats grow their file);
 *  - shared: everything, except that a format with metadata shares neither
 *    write nor resize, read-only or not (another writer would corrupt its
 *    view of the metadata);
 *  - BDRV_O_FORCE_SHARE (qemu-img -U): shares everything.
 * A protocol node opened on its own (drv NULL or a protocol driver) is
 * treated like raw. The generic layer passes the result to the protocol's
 * bdrv_set_perm; GRAPH_MOD is never locked.
 */

#include "block/block_int.h"

void bdrv_file_perms(const BlockDriver *drv, int flags, uint64_t *perm, uint64_t *shared)
{
    bool metadata = drv && !drv->is_protocol && !drv->shares_write;

    *perm = BLK_PERM_CONSISTENT_READ;
    *shared = BLK_PERM_ALL;
    if (flags & BDRV_O_RDWR) {
        *perm |= BLK_PERM_WRITE;
        if (metadata) {
            *perm |= BLK_PERM_RESIZE;
        }
    }
    if (metadata) {
        *shared &= ~(uint64_t)(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
    if (flags & BDRV_O_FORCE_SHARE) {
        *shared = BLK_PERM_ALL;
    }
}
