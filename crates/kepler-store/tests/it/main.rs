//! The store's one integration-test binary.
//!
//! `contract` holds the behaviour every backend must have, as functions taking a
//! [`support::Harness`]; `contract_tests!(factory)` turns each into a `#[tokio::test]`
//! for the backend `factory` opens. Adding a backend is one module calling the macro.

/// Instantiates every contract test for one backend; `$factory` is an
/// `async fn() -> Harness` giving a fresh, migrated database per test.
macro_rules! contract_tests {
    ($factory:path) => {
        contract_tests!(@each $factory;
            accounts_tiers_and_keys,
            keys_are_stored_only_as_hashes,
            fresh_record_is_served_uncounted,
            a_record_stored_by_an_older_release_is_served_cached,
            a_newer_record_from_another_node_replaces_the_one_served,
            a_record_deleted_by_hand_is_not_served_from_memory,
            repeated_hits_see_every_commit_and_the_clock,
            hits_asked_together_each_get_their_own_answer,
            authenticate_and_admit_is_authenticate_then_admit,
            free_tier_reads_cache_only,
            force_fresh_only_where_the_tier_allows_it,
            in_flight_job_is_returned_not_charged,
            month_cap_refuses_with_used_limit_and_reset,
            key_hour_limit_refuses_per_key,
            account_day_breaker_refuses_every_key,
            limits_are_checked_in_order,
            rolling_windows_forget_old_calls,
            over_the_limit_resets_when_enough_calls_expire,
            month_resets_on_the_first,
            usage_costs_come_from_the_cost_log,
            windows_are_exact_at_hour_and_day_edges,
            month_rolls_over_at_midnight_utc_to_the_millisecond,
            month_cap_is_exact_under_concurrency,
            key_hour_limit_is_exact_under_concurrency,
            account_day_breaker_is_exact_under_concurrency,
            one_job_per_account_and_domain_under_concurrency,
            one_run_per_domain_across_accounts,
            claim_heartbeat_and_complete,
            completing_with_another_domain_changes_nothing,
            jobs_joining_a_running_run_settle_with_it,
            expired_lease_is_reclaimed_and_the_first_worker_fenced,
            release_hands_the_run_back,
            claims_take_the_oldest_run_first,
            a_batch_claim_takes_the_oldest_runs_once,
            settling_claims_the_next_run_in_the_same_step,
            concurrent_workers_claim_each_run_once,
            queue_stats_count_jobs,
            latest_record_is_the_newest_scored,
            get_job_is_isolated_per_account,
            idempotent_answers_replay_for_a_day,
            idempotency_keys_are_reserved_then_answered,
            a_released_or_expired_reservation_frees_the_key,
            one_reservation_wins_across_two_handles,
            survives_reopen,
            a_closed_store_is_unavailable_not_empty,
            migrate_is_idempotent,
            waiting_for_work_ends_by_its_timeout,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                crate::contract::$name($factory().await).await;
            }
        )*
    };
}

mod contract;
mod pg_outage;
mod postgres;
mod sqlite;
mod support;
