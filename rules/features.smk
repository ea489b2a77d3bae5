# Features into the versioned store (serflow/shards, format in features/README.md):
#   features/{corpus}/{feature}/{version}/manifest.json, index.parquet, shard-NNNNN.safetensors,
#   utterances.parquet, dropped.parquet (+ words/phones tables for glove and spans_*, vocabulary for word_ids)
# {version} is computed at parse time from the parameters (rules/common.smk: feature_plan), so a
# changed parameter names a new folder and `snakemake -n` lists exactly the jobs that rebuild it.
# Acoustic and transformer stores: one job per shard of utterances (features.shards, or the corpus's
# feature_shards), then one finalize job. GloVe, word_ids, bert_tokens and spans are vectorised over the corpus: one job each.


rule acoustic_shard:
    input:
        manifest="data/{corpus}/manifest.parquet",
    output:
        shard="features/{corpus}/{acoustic}/{version}/shard-{shard}.safetensors",
        record="features/{corpus}/{acoustic}/{version}/parts/shard-{shard}.json",
        utterances="features/{corpus}/{acoustic}/{version}/parts/utterances-{shard}.parquet",
        dropped="features/{corpus}/{acoustic}/{version}/parts/dropped-{shard}.parquet",
    params:
        plan=checked_plan,
        shards=lambda wc: store_shards(wc.corpus),
        threads=FEATURES["threads"],
    log:
        "logs/{corpus}/features/{acoustic}-{version}/shard-{shard}.log",
    benchmark:
        "logs/{corpus}/features/{acoustic}-{version}/shard-{shard}.benchmark.tsv"
    threads: FEATURES["threads"]
    resources:
        mem_mb=4000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/extract_acoustic.py"


rule transformer_shard:
    input:
        unpack(text_inputs),
    output:
        words="features/{corpus}/{tmodel}/{version}/shard-{shard}.safetensors",
        utts="features/{corpus}/{tmodel}_utt/{version}/shard-{shard}.safetensors",
        word_record="features/{corpus}/{tmodel}/{version}/parts/shard-{shard}.json",
        utt_record="features/{corpus}/{tmodel}_utt/{version}/parts/shard-{shard}.json",
        word_parts=multiext("features/{corpus}/{tmodel}/{version}/parts/", "utterances-{shard}.parquet", "dropped-{shard}.parquet"),
        utt_parts=multiext("features/{corpus}/{tmodel}_utt/{version}/parts/", "utterances-{shard}.parquet", "dropped-{shard}.parquet"),
    params:
        plan=lambda wc: checked_plan(wc, wc.tmodel),
        shards=lambda wc: store_shards(wc.corpus),
        threads=FEATURES["threads"],
        batch_size=FEATURES["transformer"]["batch_size"],
        device=FEATURES["transformer"]["device"],
        cache_dir="models/text-encoders",
    log:
        "logs/{corpus}/features/{tmodel}-{version}/shard-{shard}.log",
    benchmark:
        "logs/{corpus}/features/{tmodel}-{version}/shard-{shard}.benchmark.tsv"
    threads: FEATURES["threads"]
    resources:
        mem_mb=6000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/extract_transformer.py"


rule finalize_features:
    input:
        unpack(feature_shards),
    output:
        manifest="features/{corpus}/{sharded}/{version}/manifest.json",
        index="features/{corpus}/{sharded}/{version}/index.parquet",
        utterances="features/{corpus}/{sharded}/{version}/utterances.parquet",
        dropped="features/{corpus}/{sharded}/{version}/dropped.parquet",
    params:
        plan=checked_plan,
        shards=lambda wc: store_shards(wc.corpus),
    log:
        "logs/{corpus}/features/{sharded}-{version}/finalize.log",
    benchmark:
        "logs/{corpus}/features/{sharded}-{version}/finalize.benchmark.tsv"
    resources:
        mem_mb=1000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/finalize_features.py"


rule glove:
    input:
        unpack(lambda wc: text_inputs(wc, "glove")),
    output:
        manifest="features/{corpus}/glove/{version}/manifest.json",
    params:
        plan=lambda wc: checked_plan(wc, "glove"),
    log:
        "logs/{corpus}/features/glove-{version}.log",
    benchmark:
        "logs/{corpus}/features/glove-{version}.benchmark.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/build_glove.py"


rule word_ids:
    input:
        unpack(lambda wc: text_inputs(wc, "word_ids")),
    output:
        manifest="features/{corpus}/word_ids/{version}/manifest.json",
    params:
        plan=lambda wc: checked_plan(wc, "word_ids"),
    log:
        "logs/{corpus}/features/word_ids-{version}.log",
    benchmark:
        "logs/{corpus}/features/word_ids-{version}.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/build_word_ids.py"


rule bert_tokens:
    input:
        unpack(lambda wc: text_inputs(wc, "bert_tokens")),
    output:
        manifest="features/{corpus}/bert_tokens/{version}/manifest.json",
    params:
        plan=lambda wc: checked_plan(wc, "bert_tokens"),
    log:
        "logs/{corpus}/features/bert_tokens-{version}.log",
    benchmark:
        "logs/{corpus}/features/bert_tokens-{version}.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/build_bert_tokens.py"


rule spans:
    input:
        unpack(lambda wc: text_inputs(wc, f"spans_{wc.acoustic}")),
        phones=lambda wc: f"{store_alignment_dir(wc, f'spans_{wc.acoustic}')}/phones.parquet",
        frames=lambda wc: feature_done(wc.corpus, wc.acoustic),
    output:
        manifest="features/{corpus}/spans_{acoustic}/{version}/manifest.json",
    params:
        plan=lambda wc: checked_plan(wc, f"spans_{wc.acoustic}"),
        frame_params=lambda wc: FEATURES["acoustic"][wc.acoustic],
    log:
        "logs/{corpus}/features/spans_{acoustic}-{version}.log",
    benchmark:
        "logs/{corpus}/features/spans_{acoustic}-{version}.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/build_spans.py"
