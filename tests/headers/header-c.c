/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * header-c.c: the installed umbrella header compiled alone as strict C (C99
 * and C11, -pedantic -Werror), every type used and every function
 * referenced, so the program links only if each declaration has a symbol.
 */
#include <libqblock.h>
/* Each header again, and in another order: the include guards must hold. */
#include <libqblock-types.h>
#include <libqblock-error.h>
#include <libqblock.h>

#include <stdio.h>
#include <string.h>

typedef void (*any_fn)(void);

/* Every public function, by address: a missing symbol fails the link. */
static const any_fn entry_points[] = {
    (any_fn)qb_broker_new, (any_fn)qb_broker_delete, (any_fn)qb_strerror,
    (any_fn)qb_error_get_human_str, (any_fn)qb_error_get_errno, (any_fn)qb_state_new,
    (any_fn)qb_state_delete, (any_fn)qb_prot_info_new, (any_fn)qb_prot_info_delete,
    (any_fn)qb_fmt_info_new, (any_fn)qb_fmt_info_delete, (any_fn)qb_fmt_info_set_options,
    (any_fn)qb_create, (any_fn)qb_open, (any_fn)qb_close, (any_fn)qb_read, (any_fn)qb_write,
    (any_fn)qb_flush, (any_fn)qb_discard, (any_fn)qb_check_allocation, (any_fn)qb_block_status,
    (any_fn)qb_info_image_static_get, (any_fn)qb_info_image_static_delete,
    (any_fn)qb_info_image_specific_get, (any_fn)qb_info_image_specific_delete,
    (any_fn)qb_get_allocated_file_size, (any_fn)qb_is_dirty, (any_fn)qb_has_zero_init,
    (any_fn)qb_str2fmttype, (any_fn)qb_fmttype2str,
};

int main(void)
{
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;
    QBlockStaticInfo info;
    QBlockStatusInfo status;
    enum QBlockFmtType type = QB_FMT_QCOW2;
    int flags = LIBQBLOCK_O_RDWR | LIBQBLOCK_O_SNAPSHOT | LIBQBLOCK_O_NOCACHE |
                LIBQBLOCK_O_CACHE_WB | LIBQBLOCK_O_NATIVE_AIO | LIBQBLOCK_O_NO_BACKING |
                LIBQBLOCK_O_NO_FLUSH;
    int errors[] = { QB_ERR_MEM_ERR, QB_ERR_INTERNAL_ERR, QB_ERR_INVALID_PARAM,
                     QB_ERR_BLOCK_OUT_OF_RANGE, QB_ERR_NOT_SUPPORTED, QB_ERR_INVALID_IMAGE,
                     QB_ERR_READ_ONLY, QB_ERR_LOCKED };
    size_t i;

    memset(&loc, 0, sizeof(loc));
    memset(&fmt, 0, sizeof(fmt));
    memset(&info, 0, sizeof(info));
    memset(&status, 0, sizeof(status));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = "unused.img";
    fmt.fmt_type = type;
    fmt.fmt_op.o_qcow2.virt_size = 1;
    fmt.fmt_op.o_qcow2.cpt_lv = QBO_FMT_QCOW2_CPT_V110;
    fmt.fmt_op.o_qcow2.pre_mode = QBO_FMT_QCOW2_PREALLOC_METADATA;
    fmt.fmt_op.o_raw.pre_mode = QBO_FMT_RAW_PREALLOC_FULL;
    fmt.fmt_op.o_vmdk.subfmt = QBO_FMT_VMDK_SUBFMT_STREAM_OPTIMIZED;
    fmt.fmt_op.o_vpc.subfmt = QBO_FMT_VPC_SUBFMT_FIXED;
    status.flags = QB_BLOCK_DATA | QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED | QB_BLOCK_OFFSET_VALID;

    if ((flags & ~LIBQBLOCK_O_VALID_MASK) != 0) {
        return 1;
    }
    for (i = 0; i < sizeof(entry_points) / sizeof(entry_points[0]); i++) {
        if (entry_points[i] == NULL) {
            return 1;
        }
    }
    /* A few real calls, so the library is loaded and runs. */
    if (qb_broker_new(&broker) != 0 || qb_state_new(broker, &qbs) != 0) {
        return 1;
    }
    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (qb_strerror(errors[i]) == NULL) {
            return 1;
        }
    }
    if (qb_str2fmttype(qb_fmttype2str(type)) != type) {
        return 1;
    }
    qb_state_delete(broker, &qbs);
    qb_broker_delete(&broker);
    printf("%u entry points, structs of %u %u %u %u bytes\n",
           (unsigned)(sizeof(entry_points) / sizeof(entry_points[0])), (unsigned)sizeof(loc),
           (unsigned)sizeof(fmt), (unsigned)sizeof(info), (unsigned)sizeof(status));
    return 0;
}
