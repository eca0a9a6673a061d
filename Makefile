# Convenience entry points; everything goes through CMake in build/.
BUILD ?= build
JOBS ?= $(shell nproc)
DEMO_MINUTES ?= 10
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: deps build test demo bench clean

deps:
	bash scripts/install-deps.sh

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

bench: build
	./$(BUILD)/bench/vaegan_bench

clean:
	rm -rf $(BUILD)
