/* A real Cloacina workflow package, written in C against the package ABI
 * (../../../shared/docs/package-abi.md). The demo compiles, signs, verifies and runs it. */
#include <stdint.h>
#include "cloacina_package.h"
#include <stdio.h>
#include <string.h>

static const cloacina_task_metadata TASKS[] = {
    {0, "collect_data", "{tenant}::data_pipeline::collect_data", "[]", "Collects the input records", "data_pipeline.c:30"},
    {1, "summarize", "{tenant}::data_pipeline::summarize", "[\"collect_data\"]", "Summarizes the collected records", "data_pipeline.c:31"},
};

static const cloacina_package_tasks PACKAGE = {
    2, TASKS, "data_pipeline", "A two-task demo workflow", "cloacina-sign demo",
    "demo-fingerprint-1", "{\"nodes\":[\"collect_data\",\"summarize\"],\"edges\":[[\"collect_data\",\"summarize\"]]}",
};

const cloacina_package_tasks *cloacina_get_task_metadata(void) { return &PACKAGE; }

static int32_t reply(uint8_t *buffer, uint32_t capacity, uint32_t *len, const char *json, int32_t code) {
    size_t n = strlen(json);
    if (n > capacity) return -2;
    memcpy(buffer, json, n);
    *len = (uint32_t)n;
    return code;
}

int32_t cloacina_execute_task(const char *task_name, uint32_t task_name_len, const char *context_json,
                              uint32_t context_len, uint8_t *result_buffer, uint32_t result_capacity,
                              uint32_t *result_len) {
    char out[4096];
    if (task_name_len == 12 && memcmp(task_name, "collect_data", 12) == 0) {
        int n = snprintf(out, sizeof out, "{\"collected\":3,\"input\":%.*s}", (int)context_len, context_json);
        if (n < 0 || (size_t)n >= sizeof out) return reply(result_buffer, result_capacity, result_len, "{\"error\":\"context too large\",\"status\":\"error\"}", -1);
        return reply(result_buffer, result_capacity, result_len, out, 0);
    }
    if (task_name_len == 9 && memcmp(task_name, "summarize", 9) == 0)
        return reply(result_buffer, result_capacity, result_len, "{\"summary\":\"3 records, all valid\"}", 0);
    return reply(result_buffer, result_capacity, result_len, "{\"error\":\"unknown task\",\"status\":\"error\"}", -1);
}
