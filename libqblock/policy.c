/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c: the public open policy of a state (QBlockOpenPolicy) turned
 * into the block layer's BdrvPolicy, whose checks block/policy.c makes.
 */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void free_dirs(char **dirs)
{
    for (char **d = dirs; d && *d; d++) {
        free(*d);
    }
    free(dirs);
}

void qb_policy_free(QBlockState *qbs)
{
    free_dirs(qbs->policy.allowed_dirs);
    qbs->policy.allowed_dirs = NULL;
}

/* The block layer's limits for the public ones (0: default, UNLIMITED: none). */
static void apply_limits(QBlockState *qbs, uint32_t depth, uint64_t meta, uint64_t desc)
{
    qbs->policy_max_depth = depth ? depth : QB_POLICY_DEFAULT_MAX_CHAIN_DEPTH;
    qbs->policy_max_metadata = meta ? meta : QB_POLICY_DEFAULT_MAX_METADATA_SIZE;
    qbs->policy_max_descriptor = desc ? desc : QB_POLICY_DEFAULT_MAX_DESCRIPTOR_SIZE;
    qbs->policy.max_chain_depth = qbs->policy_max_depth == UINT32_MAX ? 0 : qbs->policy_max_depth;
    qbs->policy.max_metadata = qbs->policy_max_metadata == QB_POLICY_UNLIMITED
                               ? 0 : qbs->policy_max_metadata;
    qbs->policy.max_descriptor = qbs->policy_max_descriptor == QB_POLICY_UNLIMITED
                                 ? 0 : qbs->policy_max_descriptor;
}

void qb_policy_init(QBlockState *qbs)
{
    qb_policy_free(qbs);
    qbs->policy.allow_raw_probe = false;
    qbs->policy.allow_any_path = false;
    apply_limits(qbs, 0, 0, 0);
}

int qb_state_set_policy(QBroker *broker, QBlockState *qbs, const QBlockOpenPolicy *policy)
{
    char **dirs = NULL;
    size_t n = 0;

    QB_REQUIRE_BROKER(broker);

    if (!qbs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_state_set_policy: NULL state");
    }
    if (qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_state_set_policy: the state has '%s' open", qbs->filename);
    }
    if (!policy) {
        qb_policy_init(qbs);
        return 0;
    }
    if (policy->flags & ~QB_POLICY_ALL_FLAGS) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_state_set_policy: unknown flags 0x%x",
                       (unsigned)(policy->flags & ~QB_POLICY_ALL_FLAGS));
    }
    for (size_t i = 0; i < ARRAY_SIZE(policy->reserved); i++) {
        if (policy->reserved[i]) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_state_set_policy: reserved members must be zero");
        }
    }
    while (policy->allowed_dirs && policy->allowed_dirs[n]) {
        n++;
    }
    if (n) {
        dirs = calloc(n + 1, sizeof(*dirs));
        if (!dirs) {
            return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_state_set_policy: out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            /* Canonical now, so that the checks compare real paths with real paths. */
            dirs[i] = realpath(policy->allowed_dirs[i], NULL);
            if (!dirs[i]) {
                int e = errno;
                free_dirs(dirs);
                if (e == ENOMEM) {
                    return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM,
                                   "qb_state_set_policy: out of memory");
                }
                return qb_fail(broker, QB_ERR_INVALID_PARAM, e,
                               "qb_state_set_policy: allowed folder '%s': %s",
                               policy->allowed_dirs[i], strerror(e));
            }
        }
    }
    qb_policy_free(qbs);
    qbs->policy.allowed_dirs = dirs;
    qbs->policy.allow_raw_probe = policy->flags & QB_POLICY_ALLOW_RAW_PROBE;
    qbs->policy.allow_any_path = policy->flags & QB_POLICY_ALLOW_ANY_PATH;
    apply_limits(qbs, policy->max_chain_depth, policy->max_metadata_size,
                 policy->max_descriptor_size);
    return 0;
}

int qb_state_get_policy(QBroker *broker, QBlockState *qbs, QBlockOpenPolicy *policy)
{
    QB_REQUIRE_BROKER(broker);

    if (!qbs || !policy) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_state_get_policy: NULL %s",
                       qbs ? "policy" : "state");
    }
    memset(policy, 0, sizeof(*policy));
    policy->flags = (qbs->policy.allow_raw_probe ? QB_POLICY_ALLOW_RAW_PROBE : 0) |
                    (qbs->policy.allow_any_path ? QB_POLICY_ALLOW_ANY_PATH : 0);
    policy->max_chain_depth = qbs->policy_max_depth;
    policy->max_metadata_size = qbs->policy_max_metadata;
    policy->max_descriptor_size = qbs->policy_max_descriptor;
    policy->allowed_dirs = (const char *const *)qbs->policy.allowed_dirs;
    return 0;
}
