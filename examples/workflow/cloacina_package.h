/* The Cloacina workflow package ABI (see shared/docs/package-abi.md): what a runner calls after a
 * verified load. Include this from a package written in C. */
#ifndef CLOACINA_PACKAGE_H
#define CLOACINA_PACKAGE_H
#include <stdint.h>

typedef struct {
    uint32_t    index;                  /* position in the tasks array */
    const char *local_id;               /* e.g. "collect_data" */
    const char *namespaced_id_template; /* e.g. "{tenant}::simple_demo::data_processing::collect_data" */
    const char *dependencies_json;      /* JSON array of local ids */
    const char *description;
    const char *source_location;
} cloacina_task_metadata;

typedef struct {
    uint32_t                      task_count;
    const cloacina_task_metadata *tasks;
    const char *package_name;
    const char *package_description;
    const char *package_author;
    const char *workflow_fingerprint;
    const char *graph_data_json;
} cloacina_package_tasks;

/* Static metadata owned by the library; valid while it stays loaded. */
const cloacina_package_tasks *cloacina_get_task_metadata(void);

/* Runs one task: 0 success (output context JSON), -1 task failure ({"error","status"} JSON),
 * any other negative value: the library could not even report an error. */
int32_t cloacina_execute_task(const char *task_name, uint32_t task_name_len,
                              const char *context_json, uint32_t context_len,
                              uint8_t *result_buffer, uint32_t result_capacity,
                              uint32_t *result_len);

#endif
