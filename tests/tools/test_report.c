/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_report.c - the HTML report of vigil-replay is
 * self-contained (no script, no external resource) and renders in headless
 * Chromium. Installs nothing: if /usr/bin/chromium is absent or cannot
 * render a trivial page, the test is skipped (exit 77) with the reason.
 * argv: vigil-replay vigil-gen SOURCE_ROOT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpdir.h"
#include "run.h"

#define CHROMIUM "/usr/bin/chromium"

static char tmp[] = "/tmp/vigil-test-report-XXXXXX";

static int
cleanup(int rv)
{
	vt_tmpdir_remove(tmp);
	return rv;
}

/* Renders url into png; 0 if chromium exited 0 and wrote a PNG. */
static int
render(const char *url, const char *png, const char *log)
{
	char profile[320], shot[320];
	const char *argv[] = { CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", profile, shot, "--window-size=1000,2400", url, NULL };
	struct stat st;
	char *p;
	int rv;

	snprintf(profile, sizeof profile, "--user-data-dir=%s/profile", tmp);
	snprintf(shot, sizeof shot, "--screenshot=%s", png);
	unlink(png);
	rv = tr_run(argv, log, log);
	if (rv != 0 || stat(png, &st) != 0 || st.st_size < 100)
		return -1;
	p = tr_slurp(png, NULL);
	rv = p != NULL && memcmp(p, "\x89PNG", 4) == 0 ? 0 : -1;
	free(p);
	return rv;
}

int
main(int argc, char **argv)
{
	char csv[256], html[256], png[256], log[256], url[320], rules[512];
	char *page;

	if (argc != 4) {
		fprintf(stderr, "usage: test-report VIGIL-REPLAY VIGIL-GEN SOURCE_ROOT\n");
		return 1;
	}
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(csv, sizeof csv, "%s/gen.csv", tmp);
	snprintf(html, sizeof html, "%s/report.html", tmp);
	snprintf(png, sizeof png, "%s/shot.png", tmp);
	snprintf(log, sizeof log, "%s/chromium.log", tmp);
	snprintf(rules, sizeof rules, "%s/rules/default.rules", argv[3]);
	{
		const char *g[] = { argv[2], "--cards", "300", "--days", "8", "--seed", "3",
			"--fraud-rate", "0.02", "-q", "-o", csv, NULL };
		const char *r[] = { argv[1], "--csv", csv, "--rules", rules, "--nightly",
			"--report", html, "-q", NULL };
		if (tr_run(g, NULL, NULL) != 0 || tr_run(r, NULL, NULL) != 0) {
			fprintf(stderr, "test-report: generating the report failed\n");
			return cleanup(1);
		}
	}
	page = tr_slurp(html, NULL);
	if (page == NULL) {
		fprintf(stderr, "test-report: %s missing\n", html);
		return cleanup(1);
	}
	/* self-contained: no script, no external resource of any kind */
	if (strstr(page, "<script") || strstr(page, "src=") || strstr(page, "href=") ||
	    strstr(page, "@import") || strstr(page, "url(") || !strstr(page, "<svg") ||
	    !strstr(page, "Precision-recall curve") || !strstr(page, "Score histogram") ||
	    !strstr(page, "Per rule:") || !strstr(page, "</html>")) {
		fprintf(stderr, "test-report: %s is not the expected self-contained page\n", html);
		free(page);
		return cleanup(1);
	}
	free(page);

	if (access(CHROMIUM, X_OK) != 0) {
		printf("SKIP: %s is not installed (apt-get install chromium to run this test)\n", CHROMIUM);
		return cleanup(77);
	}
	{
		char blank[320];
		snprintf(blank, sizeof blank, "%s/blank.png", tmp);
		if (render("data:text/html,<p>probe</p>", blank, log) != 0) {
			printf("SKIP: %s cannot start here (see its log: headless mode unavailable)\n",
			    CHROMIUM);
			return cleanup(77);
		}
	}
	snprintf(url, sizeof url, "file://%s", html);
	if (render(url, png, log) != 0) {
		char *l = tr_slurp(log, NULL);
		fprintf(stderr, "test-report: chromium could not render %s:\n%s\n", html, l ? l : "");
		free(l);
		return cleanup(1);
	}
	printf("report rendered to %s\n", png);
	return cleanup(0);
}
