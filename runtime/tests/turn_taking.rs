//! The turn-taking evaluation's corpus and policies: generation is reproducible, and the
//! default policy beats the original one where it should, on short labelled clips.
//!
//! Needs the Debian packages `espeak-ng` and `sox` (`.ci/run` installs them); without them
//! these tests fail with that message rather than skip.

use switchboard_crds::tenant::AgentSpec;
use switchboard_runtime::eval::corpus::{ClipKind, Corpus, CorpusSize};
use switchboard_runtime::eval::{self, Policy, Scores};
use switchboard_runtime::turn::{EndOfTurnConfig, TurnTaking};

fn quick_corpus(seed: u64) -> (tempfile::TempDir, Corpus) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::generate(dir.path(), seed, CorpusSize::Quick)
        .unwrap_or_else(|error| panic!("cannot generate the corpus: {error}"));
    (dir, corpus)
}

#[test]
fn corpus_generation_is_deterministic_and_labelled() {
    let (_a, first) = quick_corpus(7);
    let (_b, again) = quick_corpus(7);
    let (_c, other) = quick_corpus(8);
    assert_eq!(first.manifest, again.manifest, "same seed, same labels");
    let mut differs = false;
    for (clip, twin) in first.manifest.clips.iter().zip(&other.manifest.clips) {
        let audio = first.audio(clip).unwrap();
        assert_eq!(audio, again.audio(clip).unwrap(), "{} differs", clip.name);
        assert_eq!(audio.len() as u32 / 8, clip.duration_ms, "{}", clip.name);
        differs |= other.audio(twin).unwrap() != audio;
    }
    assert!(differs, "another seed makes other audio");

    let clips = &first.manifest.clips;
    for kind in [ClipKind::Speech, ClipKind::NonSpeech, ClipKind::Mixture] {
        assert!(clips.iter().any(|c| c.kind == kind), "{kind:?}");
    }
    assert!(clips.iter().any(|c| c.soft));
    for clip in clips {
        assert_eq!(clip.kind == ClipKind::NonSpeech, clip.segments.is_empty());
        for pair in clip.segments.windows(2) {
            assert!(pair[0].end_ms < pair[1].start_ms, "{}", clip.name);
        }
        for segment in &clip.segments {
            assert!(segment.start_ms < segment.end_ms && segment.end_ms < clip.duration_ms);
        }
        // Every speech clip has a turn paused after a trailing word, then continued.
        if clip.kind == ClipKind::Speech {
            assert!(clip.segments.iter().any(|s| !s.ends_turn), "{}", clip.name);
        }
    }
    // Reloading reads the same labels; a different seed regenerates.
    let reloaded = Corpus::load_or_generate(&first.dir, 7, CorpusSize::Quick).unwrap();
    assert_eq!(reloaded.manifest, first.manifest);
}

fn score(corpus: &Corpus, taking: TurnTaking, transcript: bool, clips: ClipFilter) -> Scores {
    let policy = Policy {
        name: "test".into(),
        taking,
        transcript,
    };
    let mut scores = Scores::default();
    for clip in corpus.manifest.clips.iter().filter(|c| clips(c)) {
        let trace = eval::run_clip(&policy, clip, &corpus.audio(clip).unwrap());
        eval::score_clip(clip, &trace, &mut scores);
    }
    scores
}

type ClipFilter = fn(&switchboard_runtime::eval::corpus::Clip) -> bool;

#[test]
fn the_default_policy_ignores_coughs_and_clicks_and_hears_the_caller() {
    let (_dir, corpus) = quick_corpus(3);
    let default = TurnTaking::of(&AgentSpec::default());
    let original = TurnTaking::original(700);
    let bursts: ClipFilter = |c| {
        c.kind == ClipKind::NonSpeech && (c.name.contains("coughs") || c.name.contains("clicks"))
    };
    let before = score(&corpus, original, false, bursts);
    let after = score(&corpus, default, false, bursts);
    assert!(
        after.false_total() * 5 <= before.false_total(),
        "at least five times fewer false barge-ins than the original rule: {:?} vs {:?}",
        after.false_barge_ins,
        before.false_barge_ins
    );

    let clean: ClipFilter = |c| c.kind == ClipKind::Speech && !c.soft;
    let heard = score(&corpus, default, false, clean);
    assert!(heard.onsets >= 10);
    assert_eq!(heard.missed, 0, "every clean onset is confirmed");
    assert_eq!(heard.false_total(), 0);
}

#[test]
fn the_adaptive_end_of_turn_answers_complete_sentences_sooner_and_waits_after_and() {
    let (_dir, corpus) = quick_corpus(5);
    let default = TurnTaking::of(&AgentSpec::default());
    let fixed = TurnTaking {
        end_of_turn: EndOfTurnConfig::fixed(700),
        ..default
    };
    let speech: ClipFilter = |c| c.kind == ClipKind::Speech && !c.soft;
    let adaptive = score(&corpus, default, true, speech);
    let waiting = score(&corpus, fixed, false, speech);
    let p50 = |s: &Scores| eval::quantile(&s.end_delay_ms, 0.5);
    assert!(
        p50(&adaptive) + 200.0 < p50(&waiting),
        "adaptive {} ms vs fixed {} ms",
        p50(&adaptive),
        p50(&waiting)
    );
    assert!(adaptive.paused_turns > 0);
    assert!(
        adaptive.cut_turns < waiting.cut_turns,
        "a trailing 'and' keeps the turn open: {} vs {} cut",
        adaptive.cut_turns,
        waiting.cut_turns
    );
}
