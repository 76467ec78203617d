//! The conformance suite through the facade's run-time choice: whatever
//! `open_best` picks on this machine must pass it too.

tensorswap_conformance::conformance_main!("open_best", requires: "cpu", || tensorswap::open_best().map(|s| s.device));
