// The XenbusState handshake table: what each side may do, and a whole device life.
#include <gtest/gtest.h>

#include "sim/core/xenbus_state.h"

namespace xensim {
namespace {

struct Transition {
    XenbusSide side;
    XenbusState from, to;
    bool allowed;
    const char* intent;
};

constexpr auto F = XenbusSide::frontend;
constexpr auto B = XenbusSide::backend;

const Transition kTransitions[] = {
    {B, XenbusStateInitialising, XenbusStateInitWait, true, "backend published its features"},
    {B, XenbusStateInitWait, XenbusStateConnected, true, "backend connects once the frontend is ready"},
    {B, XenbusStateInitialising, XenbusStateConnected, false, "backend may not skip InitWait"},
    {B, XenbusStateInitWait, XenbusStateInitialised, false, "Initialised is the frontend's state"},
    {F, XenbusStateInitialising, XenbusStateInitialised, true, "frontend wrote its rings and channel"},
    {F, XenbusStateInitialised, XenbusStateConnected, true, "frontend connects after the backend"},
    {F, XenbusStateInitialising, XenbusStateInitWait, false, "InitWait is the backend's state"},
    {F, XenbusStateConnected, XenbusStateInitialised, false, "no way back without closing"},
    {F, XenbusStateConnected, XenbusStateClosing, true, "unplug starts with Closing"},
    {B, XenbusStateConnected, XenbusStateClosing, true, "a backend may close a device"},
    {F, XenbusStateClosing, XenbusStateClosed, true, "Closing finishes in Closed"},
    {F, XenbusStateClosing, XenbusStateConnected, false, "Closing cannot be undone"},
    {B, XenbusStateClosed, XenbusStateInitialising, true, "a closed device may restart"},
    {B, XenbusStateClosed, XenbusStateConnected, false, "a restart begins at Initialising"},
    {F, XenbusStateClosed, XenbusStateClosing, false, "nothing to close"},
    {B, XenbusStateConnected, XenbusStateReconfiguring, true, "netback reconfiguration"},
    {B, XenbusStateReconfiguring, XenbusStateReconfigured, true, "reconfiguration done"},
    {B, XenbusStateReconfigured, XenbusStateConnected, true, "back to work"},
    {F, XenbusStateConnected, XenbusStateConnected, true, "rewriting the same state is harmless"},
};

TEST(XenbusState, TransitionTable) {
    for (const auto& t : kTransitions)
        EXPECT_EQ(xenbus_transition_allowed(t.side, t.from, t.to), t.allowed)
            << t.intent << ": " << xenbus_state_name(t.from) << " -> " << xenbus_state_name(t.to);
}

TEST(XenbusState, AFullHandshakeDrivenByPeerStates) {
    XenbusStateMachine front(F), back(B);
    ASSERT_TRUE(back.switch_to(XenbusStateInitWait));
    EXPECT_EQ(front.next_for_peer(back.state()), XenbusStateInitialising) << "frontend sets up on its own";
    ASSERT_TRUE(front.switch_to(XenbusStateInitialised));
    EXPECT_EQ(back.next_for_peer(front.state()), XenbusStateConnected);
    ASSERT_TRUE(back.switch_to(back.next_for_peer(front.state())));
    ASSERT_TRUE(front.switch_to(front.next_for_peer(back.state())));
    EXPECT_EQ(front.state(), XenbusStateConnected);
    // Unplug: the frontend closes, the backend follows, both end Closed.
    ASSERT_TRUE(front.switch_to(XenbusStateClosing));
    ASSERT_TRUE(back.switch_to(back.next_for_peer(front.state())));
    EXPECT_EQ(back.state(), XenbusStateClosing);
    ASSERT_TRUE(front.switch_to(XenbusStateClosed));
    ASSERT_TRUE(back.switch_to(back.next_for_peer(front.state())));
    EXPECT_EQ(back.state(), XenbusStateClosed);
    EXPECT_FALSE(front.switch_to(XenbusStateConnected)) << "a closed frontend must reinitialise first";
    EXPECT_EQ(front.state(), XenbusStateClosed);
}

TEST(XenbusState, NamesAreTheHeadersNames) {
    EXPECT_EQ(xenbus_state_name(XenbusStateInitWait), "InitWait");
    EXPECT_EQ(xenbus_state_name(XenbusStateReconfigured), "Reconfigured");
    // 9: no enumerator, but inside the enum's range of values (0-15, [dcl.enum]/8); casting 42
    // would be undefined ([expr.static.cast]/10), which clang's -fsanitize=enum reports.
    EXPECT_EQ(xenbus_state_name(static_cast<XenbusState>(9)), "Invalid");
}

}  // namespace
}  // namespace xensim

TEST(XenstoreUint, ParsesDecimalNodesAndRejectsEverythingElse) {
    using xensim::parse_xenstore_uint;
    EXPECT_EQ(parse_xenstore_uint(std::string("0")), 0u);
    EXPECT_EQ(parse_xenstore_uint(std::string("4294967295")), 4294967295u);
    EXPECT_EQ(parse_xenstore_uint(std::string("4294967296")), std::nullopt);  // above the default max
    EXPECT_EQ(parse_xenstore_uint(std::string("4294967296"), ~std::uint64_t(0)), 4294967296u);
    EXPECT_EQ(parse_xenstore_uint(std::nullopt), std::nullopt);  // node missing
    EXPECT_EQ(parse_xenstore_uint(std::string("")), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(std::string("12a")), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(std::string("-1")), std::nullopt);
    EXPECT_EQ(parse_xenstore_uint(std::string("99999999999999999999")), std::nullopt);  // 20 digits
}
