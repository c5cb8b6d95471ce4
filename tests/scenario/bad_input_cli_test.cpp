// Bad input to the xensim command line (issue 11 §D): every case below is refused with exit status 2
// and a message that names the file, the JSON pointer (or the flag), what was expected and what was
// found, before anything is simulated. The cases come from the robustness review
// (reliability-2026-12.md §1); each ran to exit 1, exit 0 or host memory exhaustion before.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/scenario/cli_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cli_testing;

// `xensim ARGS` under timeout(1): an input that made xensim read forever must fail the test, not hang it.
Result xensim_bounded(const std::string& args) {
    std::string cmd = "timeout -k 5 120 " + std::string(XENSIM_BIN) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0 && out.size() < (1u << 20)) out.append(buf, n);
    int st = pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A scenario file with text `text` in a fresh scratch directory.
fs::path scenario_file(const std::string& dir, const std::string& text) {
    fs::path f = temp_dir(dir) / "s.json";
    std::ofstream(f) << text;
    return f;
}

const std::string kBlk = src("scenarios/blk-qd1-read.json");

// --- item 21: numbers outside the integer range, and beyond a double ---

struct NumberCase {
    const char* literal;
    const char* found;  // as the message prints it
};

class OutOfRangeNumber : public ::testing::TestWithParam<NumberCase> {};

// Before: a double beyond int64 was cast with undefined behaviour and reported as "found integer
// -9223372036854775808" (config_schema.cpp, static_cast<int64_t>(double)).
TEST_P(OutOfRangeNumber, IsReportedAsTheNumberItIs) {
    fs::path f =
        scenario_file("num", std::string(R"({"name":"x","platform":{"pcpus":)") + GetParam().literal +
                                 R"(},"domains":[{"name":"dom0","type":"pv"}]})");
    Result r = xensim_bounded("validate " + f.string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, f.string() + ": /platform/pcpus: expected an integer in [1, 64], found " +
                                       GetParam().found))
        << r.output;
    EXPECT_FALSE(contains(r.output, "-9223372036854775808")) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OutOfRangeNumber,
    ::testing::Values(NumberCase{"1e19", "number 1e+19"}, NumberCase{"9.3e18", "number 9.3e+18"},
                      NumberCase{"18446744073709551616", "number 1.8446744073709552e+19"},
                      NumberCase{"-9223372036854775809", "number -9.223372036854776e+18"},
                      NumberCase{"-1e300", "number -1e+300"}));

// Before: nlohmann's out_of_range.406 escaped as "internal error", exit 1, with no file or line.
TEST(BadInput, NumberBeyondADoubleNamesFileLineAndColumn) {
    fs::path f = scenario_file("num400",
                               "{\"name\":\"x\",\n \"platform\":{\"pcpus\":1e400},\n"
                               " \"domains\":[{\"name\":\"dom0\",\"type\":\"pv\"}]}");
    Result r = xensim_bounded("validate " + f.string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, f.string() + ":2:")) << r.output;
    EXPECT_TRUE(contains(r.output, "not valid JSON")) << r.output;
    EXPECT_TRUE(contains(r.output, "1e400")) << r.output;
    EXPECT_FALSE(contains(r.output, "internal error")) << r.output;
}

TEST(BadInput, CompareRefusesAReportWithANumberBeyondADouble) {
    fs::path d = temp_dir("cmp400");
    std::ofstream(d / "a.json")
        << "{\"schema_version\": 2,\n \"workloads\": [{\"name\": \"w\", \"ops\": 1e400}]}";
    Result r = xensim_bounded("compare " + (d / "a.json").string() + " " + (d / "a.json").string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, (d / "a.json").string() + ":2:")) << r.output;
    EXPECT_TRUE(contains(r.output, "1e400")) << r.output;
    EXPECT_FALSE(contains(r.output, "internal error")) << r.output;
}

// --- item 22: what is not a regular file of sane size ---

// Before: read /dev/zero until host memory ran out (4.1 GB under a 6 GiB limit), then "1:1 unexpected
// end of input".
TEST(BadInput, ScenarioThatIsACharacterDeviceIsRefusedUnread) {
    Result r = xensim_bounded("validate /dev/zero");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "/dev/zero: expected a regular JSON file, found a character device"))
        << r.output;
}

// Before: "<dir>:1:1: not valid JSON ... unexpected end of input".
TEST(BadInput, ScenarioThatIsADirectoryIsRefused) {
    fs::path d = temp_dir("dir-scenario");
    Result r = xensim_bounded("run " + d.string() + " --out " + (d / "out").string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, d.string() + ": expected a regular JSON file, found a directory"))
        << r.output;
    EXPECT_FALSE(fs::exists(d / "out")) << "nothing is simulated";
}

TEST(BadInput, ScenarioThatIsAFifoIsRefusedWithoutWaitingForAWriter) {
    fs::path d = temp_dir("fifo-scenario");
    ASSERT_EQ(::mkfifo((d / "s.json").c_str(), 0600), 0);
    Result r = xensim_bounded("validate " + (d / "s.json").string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "expected a regular JSON file, found a FIFO")) << r.output;
}

TEST(BadInput, ScenarioLargerThanTheLimitIsRefusedUnread) {
    fs::path f = temp_dir("huge-scenario") / "s.json";
    std::ofstream(f) << " ";
    fs::resize_file(f, (16u << 20) + 1);  // sparse: nothing is written
    Result r = xensim_bounded("validate " + f.string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, f.string() + ": expected a file of at most 16777216 bytes (16 MiB), found "
                                                "16777217 bytes"))
        << r.output;
}

TEST(BadInput, CompareRefusesADirectory) {
    fs::path d = temp_dir("cmp-dir");
    Result r = xensim_bounded("compare " + d.string() + " " + d.string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, d.string() + ": expected a regular JSON file, found a directory"))
        << r.output;
}

// --- item 23: an --out that cannot be written is found before the run ---

// Before: the whole run, then "internal error: cannot write /proc/self/report.json", exit 1.
TEST(BadInput, OutDirectoryThatExistsButCannotBeWrittenIsFoundFirst) {
    Result r = xensim_bounded("run " + kBlk + " --out /proc/self");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "--out /proc/self: cannot write /proc/self/report.json: ")) << r.output;
    EXPECT_FALSE(contains(r.output, "Workloads")) << "nothing is simulated:\n" << r.output;
}

class UnwritableOutFile : public ::testing::TestWithParam<const char*> {};

// A report file that opens but takes no byte (a symlink to /dev/full): ENOSPC on the first write.
TEST_P(UnwritableOutFile, IsFoundBeforeTheRun) {
    fs::path d = temp_dir("out-full");
    fs::create_symlink("/dev/full", d / GetParam());
    Result r = xensim_bounded("run " + kBlk + " --trace blkif --out " + d.string());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "--out " + d.string() + ": cannot write " + (d / GetParam()).string() +
                                       ": No space left on device"))
        << r.output;
    EXPECT_FALSE(contains(r.output, "Workloads")) << "nothing is simulated:\n" << r.output;
}

INSTANTIATE_TEST_SUITE_P(Files, UnwritableOutFile,
                         ::testing::Values("report.json", "stats.json", "trace.json"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                             return std::string(p.param).substr(0, std::string(p.param).find('.'));
                         });

// --- item 24: disk images and fio geometry, caught by validate with the key named ---

struct ValidateCase {
    const char* intent;
    std::string args;  // after "validate"
    std::string expect;
};

class RefusedByValidate : public ::testing::TestWithParam<ValidateCase> {};

// Before: each passed `validate` and ended the run with exit 1 (the reason labelled "internal
// error", or only in report.json's block.first_failure).
TEST_P(RefusedByValidate, WithTheKeyExpectedAndFound) {
    Result r = xensim_bounded("validate " + GetParam().args);
    EXPECT_EQ(r.status, 2) << GetParam().intent << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, GetParam().expect)) << GetParam().intent << "\n" << r.output;
}

std::string scratch() {
    static const fs::path d = temp_dir("images");
    return d.string();
}

std::string image_at(const std::string& path) {
    return kBlk + " --set 'domains.1.disks.0.image=\"" + path + "\"'";
}

std::string wrong_size_image() {
    fs::path f = fs::path(scratch()) / "small.img";
    std::ofstream(f) << std::string(4096, '\0');
    return f.string();
}

const std::string kNetRate = src("scenarios/net-rate-limit.json");
const std::string kImage = kBlk + ": /domains/1/disks/0/image: expected ";

INSTANTIATE_TEST_SUITE_P(
    Cases, RefusedByValidate,
    ::testing::Values(
        ValidateCase{"image in a directory that does not exist", image_at(scratch() + "/nodir/d.img"),
                     kImage + "a path in an existing directory, found string \"" + scratch() +
                         "/nodir/d.img\" (" + scratch() + "/nodir: No such file or directory)"},
        ValidateCase{"image that is a directory", image_at(scratch()),
                     kImage + "a regular file (or a path where one can be created), found a directory"},
        ValidateCase{
            "image that is a device", image_at("/dev/full"),
            kImage + "a regular file (or a path where one can be created), found a character device"},
        ValidateCase{
            "image of the wrong size", image_at(wrong_size_image()),
            kImage + "a file of 1073741824 bytes (sectors 2097152 x 512), found a file of 4096 bytes"},
        ValidateCase{"image the file system cannot hold (512 TiB on ext4: EFBIG)",
                     image_at(scratch() + "/big.img") + " --set domains.1.disks.0.sectors=1099511627776",
                     kImage + "a size the file system can hold (562949953421312 bytes), found string \"" +
                         scratch() + "/big.img\" (File too large)"},
        ValidateCase{"image in a directory that cannot be written", image_at("/proc/self/d.img"),
                     kImage + "a file xensim can create, found string \"/proc/self/d.img\""},
        ValidateCase{"fio bs larger than the disk", kBlk + " --set domains.1.disks.0.sectors=1",
                     kBlk +
                         ": /workloads/0/bs: expected at most the region of job 0 (512 bytes), found integer "
                         "4096"},
        ValidateCase{"fio offset past the end of the disk", kBlk + " --set workloads.0.offset=1073741824",
                     kBlk + ": /workloads/0/offset: expected an offset inside the disk (below 1073741824 "
                            "bytes), found integer 1073741824"},
        ValidateCase{"fio offset_increment x numjobs past the end",
                     kBlk + " --set workloads.0.numjobs=4 --set workloads.0.offset_increment=402653184",
                     kBlk + ": /workloads/0/offset_increment: expected job 3's start (offset 0 + 3 x "
                            "offset_increment) inside the disk (below 1073741824 bytes), found integer "
                            "402653184"},
        ValidateCase{"fio size past the end", kBlk + " --set workloads.0.size=1073745920",
                     kBlk + ": /workloads/0/size: expected a region that ends inside the disk (job 0: at "
                            "most 1073741824 bytes from 0), found integer 1073745920"},
        // xlu_vif_parse_rate's regex takes a capital K only.
        ValidateCase{
            "vif rate xl refuses", kNetRate + " --set domains.1.nics.0.rate=100kb/s@1s",
            kNetRate + ": /domains/1/nics/0/rate: expected a rate as xl takes it, RATE/s[@INTERVAL]"},
        ValidateCase{"vif rate interval of zero", kNetRate + " --set domains.1.nics.0.rate=10Mb/s@0ms",
                     "(xl: replenishment interval overflow), found string \"10Mb/s@0ms\""}),
    [](const ::testing::TestParamInfo<ValidateCase>& p) {
        std::string n;
        for (const char* c = p.param.intent; *c; ++c)
            n += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
        return n;
    });

TEST(BadInput, ImageCheckCreatesNothing) {
    fs::path d = temp_dir("image-nocreate");
    Result r = xensim_bounded("validate " + image_at((d / "new.img").string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(fs::is_empty(d)) << "validate leaves the image to the run";
}

// --- item 25: --set paths and values ---

TEST(BadInput, SetArrayIndexMustBeAllDigits) {
    // Before: std::stoul took the prefix "1" and the run went on with exit 0.
    Result r = xensim_bounded("validate " + kBlk + " --set domains.1x.vcpus=2");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, kBlk + ": --set domains.1x.vcpus=2: /domains: expected an array index "
                                          "from 0 to 1, found \"1x\""))
        << r.output;
    r = xensim_bounded("validate " + kBlk + " --set domains.-1.vcpus=2");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output,
                         ": --set domains.-1.vcpus=2: /domains: expected an array index from 0 to 1, "
                         "found \"-1\""))
        << r.output;
    r = xensim_bounded("validate " + kBlk + " --set domains.2.vcpus=2");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output,
                         ": --set domains.2.vcpus=2: /domains: expected an array index from 0 to 1, "
                         "found \"2\""))
        << r.output;
}

TEST(BadInput, SetPathWithAnEmptyComponentIsRefused) {
    // Before: the trailing dot was dropped and "platform.=1" became "platform=1".
    for (const char* path : {"platform.", ".platform", "platform..pcpus"}) {
        Result r = xensim_bounded("validate " + kBlk + " --set " + path + "=1");
        EXPECT_EQ(r.status, 2) << r.output;
        EXPECT_TRUE(contains(r.output, kBlk + ": --set " + path +
                                           "=1: expected PATH=VALUE with no empty "
                                           "component in PATH, e.g. platform.pcpus=4"))
            << r.output;
    }
}

// A string-typed key takes a bare word (decided by the schema); other keys still take JSON.
TEST(BadInput, SetTakesABareWordForAStringKey) {
    Result r = xensim_bounded("validate " + kBlk +
                              " --set domains.1.disks.0.model=null --set workloads.0.rw=read --set name=42"
                              " --set domains.1.type=hvm");
    ASSERT_EQ(r.status, 0) << r.output;
    json e = json::parse(r.output.substr(0, r.output.rfind('}') + 1));
    EXPECT_EQ(e["domains"][1]["disks"][0]["model"], "null");
    EXPECT_EQ(e["workloads"][0]["rw"], "read") << "a variant's key, typed through its \"type\"";
    EXPECT_EQ(e["name"], "42");
    r = xensim_bounded("validate " + kBlk + " --set 'domains.1.disks.0.model=\"null\"'");
    ASSERT_EQ(r.status, 0) << "a JSON string still works:\n" << r.output;
    r = xensim_bounded("validate " + kBlk + " --set platform.pcpus=null");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, kBlk + ": /platform/pcpus: expected an integer (CPUs), found null"))
        << r.output;
    r = xensim_bounded("validate " + kBlk + " --set domains.1.disks.0.model=nvme");
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_TRUE(contains(r.output, kBlk +
                                       ": /domains/1/disks/0/model: expected one of \"null\", \"ramdisk\", "
                                       "\"ssd\", \"hdd\", found string \"nvme\""))
        << r.output;
}

}  // namespace
