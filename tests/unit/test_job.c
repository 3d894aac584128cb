/* The job state machine (SPEC 3.2 and 4): every row of the mode table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "job/job.h"

/* Walks a job of mode m through its steps with the given inbound decision
 * and returns the status where it stops (waiting or terminal), counting the
 * steps run. A response is submitted when the job awaits one and
 * submit_response is set. */
static enum job_status run(enum job_mode m, bool blocked, bool submit_response, int *steps)
{
    enum job_status s = JOB_PENDING;
    *steps = 0;
    for (int guard = 0; guard < 10; guard++) {
        enum job_step step = job_step_due(s, m);
        if (step == JOB_STEP_NONE) {
            if (s == JOB_AWAITING_RESPONSE && submit_response) {
                assert_true(job_accepts_response(s));
                s = JOB_PROCESSING_OUTBOUND;
                submit_response = false;
                continue;
            }
            return s;
        }
        s = job_status_on_claim(s, m);
        assert_int_equal(
            step == JOB_STEP_INBOUND ? JOB_PROCESSING_INBOUND : JOB_PROCESSING_OUTBOUND, s);
        s = step == JOB_STEP_INBOUND ? job_status_after_inbound(m, blocked)
                                     : job_status_after_outbound(m);
        (*steps)++;
    }
    fail_msg("state machine does not terminate");
    return s;
}

static void test_legacy(void **state)
{
    int steps;
    assert_int_equal(run(JOB_MODE_LEGACY, false, false, &steps), JOB_COMPLETED);
    assert_int_equal(steps, 1);
}

static void test_input_awaits_response(void **state)
{
    int steps;
    assert_int_equal(run(JOB_MODE_INPUT, false, false, &steps), JOB_AWAITING_RESPONSE);
    assert_int_equal(steps, 1);
    assert_int_equal(run(JOB_MODE_INPUT, false, true, &steps), JOB_COMPLETED);
    assert_int_equal(steps, 2);
}

static void test_input_only(void **state)
{
    int steps;
    assert_int_equal(run(JOB_MODE_INPUT_ONLY, false, true, &steps), JOB_COMPLETED);
    assert_int_equal(steps, 1);
}

static void test_output_only_skips_inbound(void **state)
{
    assert_int_equal(job_step_due(JOB_PENDING, JOB_MODE_OUTPUT), JOB_STEP_OUTBOUND);
    assert_int_equal(job_status_on_claim(JOB_PENDING, JOB_MODE_OUTPUT), JOB_PROCESSING_OUTBOUND);
    int steps;
    assert_int_equal(run(JOB_MODE_OUTPUT, false, false, &steps), JOB_COMPLETED);
    assert_int_equal(steps, 1);
}

static void test_combined_runs_both(void **state)
{
    assert_int_equal(job_status_after_inbound(JOB_MODE_COMBINED, false), JOB_PROCESSING_OUTBOUND);
    int steps;
    assert_int_equal(run(JOB_MODE_COMBINED, false, false, &steps), JOB_COMPLETED);
    assert_int_equal(steps, 2);
}

static void test_block_ends_every_inbound_mode(void **state)
{
    enum job_mode modes[] = {JOB_MODE_LEGACY, JOB_MODE_INPUT, JOB_MODE_INPUT_ONLY,
                             JOB_MODE_COMBINED};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        int steps;
        assert_int_equal(run(modes[i], true, true, &steps), JOB_COMPLETED);
        assert_int_equal(steps, 1);
    }
}

static void test_response_only_when_awaiting(void **state)
{
    for (int s = 0; s < JOB_STATUS_COUNT; s++)
        assert_int_equal(job_accepts_response((enum job_status)s), s == JOB_AWAITING_RESPONSE);
}

static void test_terminal_statuses(void **state)
{
    for (int s = 0; s < JOB_STATUS_COUNT; s++) {
        bool terminal = s == JOB_COMPLETED || s == JOB_FAILED || s == JOB_EXPIRED;
        assert_int_equal(job_status_terminal((enum job_status)s), terminal);
        if (terminal)
            assert_int_equal(job_step_due((enum job_status)s, JOB_MODE_COMBINED), JOB_STEP_NONE);
    }
}

static void test_names_round_trip(void **state)
{
    for (int s = 0; s < JOB_STATUS_COUNT; s++) {
        enum job_status out;
        assert_int_equal(job_status_parse(job_status_name((enum job_status)s), &out), 0);
        assert_int_equal(out, s);
    }
    enum job_status out;
    assert_int_equal(job_status_parse("processing", &out), -1);
    assert_string_equal(job_status_name(JOB_AWAITING_RESPONSE), "awaiting_response");
    for (int m = 0; m < JOB_MODE_COUNT; m++) {
        enum job_mode mo;
        assert_int_equal(job_mode_parse(job_mode_name((enum job_mode)m), &mo), 0);
        assert_int_equal(mo, m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_input_awaits_response),
        cmocka_unit_test(test_input_only),
        cmocka_unit_test(test_output_only_skips_inbound),
        cmocka_unit_test(test_combined_runs_both),
        cmocka_unit_test(test_block_ends_every_inbound_mode),
        cmocka_unit_test(test_response_only_when_awaiting),
        cmocka_unit_test(test_terminal_statuses),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
