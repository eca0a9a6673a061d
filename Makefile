SHELL := /bin/bash
# Convenience entry points; everything goes through CMake in build/.
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MINUTES ?= 10
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: deps build test test-asan demo bench bench-serve bench-scaling bench-quality bench-quality-icons fuzz clean build-torch2 test-torch2 bench-torch2

deps:
	bash scripts/install-deps.sh
	bash scripts/setup-python.sh >/dev/null

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The main job: train the VAE-GAN on Debian's Fashion-MNIST and write runs/demo/.
demo: build
	./$(BUILD)/vaegan train --dataset fashion-mnist --epochs 10 --max-minutes $(DEMO_MINUTES) --out runs/demo --overwrite
	./$(BUILD)/vaegan sample --checkpoint runs/demo --n 64 --out runs/demo/samples.png
	./$(BUILD)/vaegan reconstruct --checkpoint runs/demo --n 32 --out runs/demo/reconstructions.png
	@echo "demo: image grids in runs/demo/images/ and runs/demo/{samples,reconstructions}.png"
	@echo "demo: see the run and its latent space in a browser with: ./$(BUILD)/vaegan serve runs/demo"

bench: build
	./$(BUILD)/bench/vaegan_bench

# `vaegan serve` under load (bench/serve_load.py): 2,000 decode requests from 4 clients on
# loopback against runs/demo (make demo first, or SERVE_RUN=DIR).
SERVE_RUN ?= runs/demo
bench-serve: build
	/usr/bin/python3 bench/serve_load.py $(BUILD)/vaegan $(SERVE_RUN)

# Data-parallel scaling on this machine: 1 process x N threads against N ranks x 1 thread
# (docs/scaling.md; a few minutes on 2 cores).
bench-scaling: build
	VAEGAN=$(BUILD)/vaegan bash bench/scaling.sh

# Sample and reconstruction quality at the demo's budget (bench/quality.sh; about 45 minutes on 2
# cores): the default VAE-GAN and the plain VAE, two seeds each, then the table.
bench-quality: build
	for seed in 1 2; do \
	  VAEGAN=$(BUILD)/vaegan bash bench/quality.sh run vaegan-default $$seed && \
	  VAEGAN=$(BUILD)/vaegan bash bench/quality.sh run vae $$seed --model vae || exit 1; \
	done
	bash bench/quality.sh table

# The same two rows on the second dataset, the Oxygen icons (scripts/oxygen-icons.sh installs and lays
# them out; about 40 minutes on 2 cores in fp32): small32 in RGB, 600 steps a run, its own classifier (30 epochs).
ICONS_QUALITY = QUALITY_DATASET=folder QUALITY_DATA_DIR=data/oxygen-icons QUALITY_STEPS=600 QUALITY_SAMPLES=2000 \
	QUALITY_CLASSIFIER_EPOCHS=30 QUALITY_CLASSIFIER_FLAGS="--channels 3 --image-size 32" VAEGAN=$(BUILD)/vaegan
bench-quality-icons: build
	bash scripts/oxygen-icons.sh
	for seed in 1 2; do \
	  $(ICONS_QUALITY) bash bench/quality.sh run vaegan-default $$seed --arch small32 --channels 3 && \
	  $(ICONS_QUALITY) bash bench/quality.sh run vae $$seed --arch small32 --channels 3 --model vae || exit 1; \
	done
	bash bench/quality.sh table

# The second build: LibTorch 2.x with CUDA, from the pinned PyPI torch in the project's virtual
# environment (scripts/setup-torch2.sh; about 4 GB). Its tests run on the CPU here (the `cuda`
# label skips without a GPU) and compare against that environment's PyTorch; needs the CUDA
# toolkit (nvcc) for LibTorch's CMake package.
VENV ?= .venv
BUILD2 ?= build-torch2
build-torch2: deps
	T="$$(VAEGAN_VENV=$(VENV) bash scripts/setup-torch2.sh)" && \
	  cmake -S . -B $(BUILD2) $(CMAKE_FLAGS) -DCMAKE_PREFIX_PATH="$$T/share/cmake;$$T" \
	    -DVAEGAN_PYTHON="$(abspath $(VENV))/bin/python"
	cmake --build $(BUILD2) -j $(JOBS)

test-torch2: build-torch2
	cd $(BUILD2) && ctest --output-on-failure -j $(JOBS)

bench-torch2: build-torch2
	./$(BUILD2)/bench/vaegan_bench

# The whole test suite built with AddressSanitizer and UndefinedBehaviorSanitizer (LibTorch itself
# is not instrumented). Not part of `make test`: it takes several times longer.
test-asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Asan -DVAEGAN_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS_ASAN="-O1 -g1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  -DCMAKE_C_FLAGS_ASAN="-O1 -g1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  -DCMAKE_EXE_LINKER_FLAGS_ASAN="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS_ASAN="-fsanitize=address,undefined"
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=0:new_delete_type_mismatch=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E chaos

# libFuzzer targets with ASan + UBSan (clang), each run for FUZZ_SECONDS on a corpus seeded
# from fuzz/corpus/; findings stop the loop with the crashing input in the working directory.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := idx cifar image celeba_attr config
fuzz:
	bash scripts/install-deps.sh --fuzz
	cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DVAEGAN_FUZZ=ON -DVAEGAN_BUILD_TESTS=OFF -DVAEGAN_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t && cp -n fuzz/corpus/$$t/* build-fuzz/corpus/$$t/ && \
	  ./build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 \
	    build-fuzz/corpus/$$t 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

clean:
	rm -rf $(BUILD) build-fuzz
