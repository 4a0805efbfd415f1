/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_tune.c - srv_page_reporting (server/tune.c): whether a
 * virtio balloon reports free pages, read from sysfs trees made here the
 * way the kernel lays them out (bus/virtio/devices/virtioN/{device,
 * features,driver}).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "srv.h"

/* Feature strings: bit 0 first. A Firecracker balloon with stats,
 * deflate-on-OOM and free page reporting; the same without reporting. */
#define F_REPORTING "0110010000000000000000000000000010000000"
#define F_PLAIN     "0110000000000000000000000000000010000000"

static char root[64];

static void
put(const char *dev, const char *file, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/bus/virtio/devices/%s", root, dev);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bus/virtio/devices/%s/%s", root, dev, file);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "%s\n", text);
	fclose(f);
}

/* A device: its id, features and (bound) a driver link. */
static void
device(const char *dev, const char *id, const char *features, bool bound)
{
	char path[256];

	put(dev, "device", id);
	put(dev, "features", features);
	if (bound) {
		char target[256];

		snprintf(target, sizeof target, "%s/bus/virtio/drivers/virtio_balloon", root);
		snprintf(path, sizeof path, "%s/bus/virtio/devices/%s/driver", root, dev);
		assert_int_equal(symlink(target, path), 0);
	}
}

static int
setup(void **state)
{
	char path[256];

	(void)state;
	snprintf(root, sizeof root, "/tmp/vigil-sysfs-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/bus", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bus/virtio", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bus/virtio/drivers", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bus/virtio/drivers/virtio_balloon", root);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/bus/virtio/devices", root);
	return mkdir(path, 0755);
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* No virtio bus at all (bare metal, most clouds' NVMe machines). */
static void
test_no_virtio(void **state)
{
	(void)state;
	assert_false(srv_page_reporting("/nonexistent-sysfs"));
	assert_false(srv_page_reporting(root)); /* the bus, no device */
}

static void
test_balloon_reporting(void **state)
{
	(void)state;
	device("virtio1", "0x0002", F_REPORTING, true); /* a disk with bit 5 is not it */
	assert_false(srv_page_reporting(root));
	device("virtio0", "0x0005", F_REPORTING, true);
	assert_true(srv_page_reporting(root));
}

static void
test_balloon_without_reporting(void **state)
{
	(void)state;
	device("virtio0", "0x0005", F_PLAIN, true);
	assert_false(srv_page_reporting(root));
}

/* A balloon no driver took reports nothing. */
static void
test_balloon_unbound(void **state)
{
	(void)state;
	device("virtio0", "0x0005", F_REPORTING, false);
	assert_false(srv_page_reporting(root));
}

/* Short or unreadable files are not taken for reporting. */
static void
test_short_features(void **state)
{
	(void)state;
	device("virtio0", "0x0005", "01100", true);
	assert_false(srv_page_reporting(root));
	put("virtio2", "device", "0x0005"); /* no features file */
	assert_false(srv_page_reporting(root));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_virtio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balloon_reporting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balloon_without_reporting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_balloon_unbound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_features, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
