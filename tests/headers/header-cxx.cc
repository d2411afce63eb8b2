// SPDX-License-Identifier: LGPL-2.1-or-later
// header-cxx.cc: the installed umbrella header compiled as C++ (-pedantic
// -Werror); linking it proves the declarations have C linkage.
#include <libqblock.h>
#include <libqblock.h>

#include <cstdio>
#include <cstring>

int main()
{
    QBroker *broker = nullptr;
    QBlockState *qbs = nullptr;
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;
    QBlockStatusInfo status;
    QBlockStaticInfo *info = nullptr;
    QBlockSpecificInfo *specific = nullptr;

    std::memset(&loc, 0, sizeof(loc));
    std::memset(&fmt, 0, sizeof(fmt));
    std::memset(&status, 0, sizeof(status));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = "unused.img";
    fmt.fmt_type = QB_FMT_RAW;
    fmt.fmt_op.o_raw.virt_size = 512;
    fmt.fmt_op.o_raw.pre_mode = QBO_FMT_RAW_PREALLOC_OFF;

    static_assert(sizeof(QBlockProtInfo) == 520, "QBlockProtInfo size");
    static_assert(sizeof(QBlockFmtInfo) == 1032, "QBlockFmtInfo size");
    static_assert(sizeof(QBlockStaticInfo) == 1584, "QBlockStaticInfo size");
    static_assert(sizeof(QBlockStatusInfo) == 128, "QBlockStatusInfo size");
    static_assert(sizeof(QBlockSpecificInfo) == 1032, "QBlockSpecificInfo size");
    static_assert(QB_FMT_MAX == 11, "QB_FMT_MAX");
    static_assert(LIBQBLOCK_O_VALID_MASK == 0x03ea, "LIBQBLOCK_O_VALID_MASK");

    if (qb_broker_new(&broker) != 0 || qb_state_new(broker, &qbs) != 0) {
        return 1;
    }
    // The calls below are made on a state that is not open: each must fail
    // cleanly, which is all a link-and-run test needs.
    if (qb_info_image_static_get(broker, qbs, &info) != QB_ERR_INVALID_PARAM) {
        return 1;
    }
    if (qb_block_status(broker, qbs, 0, 512, &status) != QB_ERR_INVALID_PARAM) {
        return 1;
    }
    if (qb_info_image_specific_get(broker, qbs, &specific) != QB_ERR_INVALID_PARAM ||
        specific != nullptr) {
        return 1;
    }
    qb_info_image_specific_delete(broker, &specific);
    if (qb_str2fmttype("qcow2") != QB_FMT_QCOW2 || qb_fmttype2str(QB_FMT_VPC) == nullptr) {
        return 1;
    }
    qb_state_delete(broker, &qbs);
    qb_broker_delete(&broker);
    std::printf("C++ consumer ok\n");
    return 0;
}
