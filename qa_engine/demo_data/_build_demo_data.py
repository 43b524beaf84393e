#!/usr/bin/env python3
"""Build the qa-engine offline demo dataset (SQuAD v1.1 JSON format).

Every paragraph, question and answer below is original text written for the
qa-engine project (no SQuAD, Wikipedia or other outside text); the places,
people and organisations are fictional unless the topic is generic (the Moon,
honeybees, glassblowing, comets).  Licensed like the project: Apache-2.0.

Answer offsets are never written by hand.  Each answer is given as text,
optionally with the 1-based occurrence to use when the text appears more than
once in its paragraph; ``answer_start`` is computed with ``str.find`` and
checked with ``context[s:s + len(text)] == text``.

Usage (from anywhere)::

    python3 qa_engine/demo_data/_build_demo_data.py          # (re)write train.json / dev.json
    python3 qa_engine/demo_data/_build_demo_data.py --check  # verify the files on disk are current

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Union

HERE = Path(__file__).resolve().parent

# An answer spec is either "text" (must occur exactly once in the context, as a
# whole-word match) or ("text", n): the n-th (1-based) whole-word occurrence.
AnswerSpec = Union[str, tuple]

MIN_WORDS, MAX_WORDS = 60, 140  # paragraph length bounds
MIN_QAS, MAX_QAS = 5, 7  # questions per paragraph
MAX_ANSWER_WORDS = 9  # hard limit; most answers are 1-6 words


def P(text: str) -> str:
    """Collapse the whitespace of a triple-quoted paragraph into single spaces."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------
# TRAIN: (title, [(context, [(question, answer_spec), ...]), ...])
# ---------------------------------------------------------------------------

TRAIN = [
    (
        "Harrowmere",
        [
            (
                P("""Harrowmere is a market town on the southern bank of the Velland River,
        roughly forty kilometres upstream from the coastal city of Port Aldric. The
        settlement began as a ferry crossing in the early twelfth century, when a family
        of boatmen named the Corrans charged travellers a copper coin to carry them across
        the water. By 1240 a wooden bridge had replaced the ferry, and a weekly wool market
        was held on the open ground beside it. The town takes its name from the old word
        harrow, meaning a grey heron, and the shallow mere where the birds once gathered in
        large numbers."""),
                [
                    ("On which side of the Velland River is Harrowmere located?", "southern"),
                    (
                        "Approximately how far is Harrowmere from Port Aldric?",
                        "roughly forty kilometres",
                    ),
                    ("What was the occupation of the Corran family?", "boatmen"),
                    (
                        "What did a traveller have to pay the Corrans for a crossing?",
                        "a copper coin",
                    ),
                    ("By what year had a bridge taken the place of the ferry?", "1240"),
                    ("What product was traded at the weekly market?", "wool"),
                    ("Which bird did the old word harrow refer to?", "a grey heron"),
                ],
            ),
            (
                P("""During the sixteenth century Harrowmere grew wealthy from cloth dyeing.
        Workers soaked woven wool in vats of madder root to produce a deep red colour that
        became known across the region as Harrowmere crimson. At its height in 1580, the
        trade employed more than six hundred people, nearly half of the town's population.
        The industry declined sharply after a flood in 1614 destroyed most of the dye houses
        along the riverbank. Many families moved north to the city of Callowby, and the
        town's population did not recover its earlier size until the arrival of the railway
        two centuries later."""),
                [
                    ("Which industry brought wealth to Harrowmere in the 1500s?", "cloth dyeing"),
                    ("What plant material gave the cloth its red colour?", "madder root"),
                    (
                        "What was the town's red dye called throughout the region?",
                        "Harrowmere crimson",
                    ),
                    (
                        "How many workers did the dyeing trade have at its peak?",
                        "more than six hundred",
                    ),
                    ("In what year did floodwater wreck the dye houses?", "1614"),
                    ("To which city did many Harrowmere families move?", "Callowby"),
                ],
            ),
            (
                P("""Modern Harrowmere is best known for its Thursday market, its restored
        medieval bridge, and the Heron Museum, which opened in 1978 in a former grain store.
        The museum holds a collection of dyeing tools, old ledgers from the cloth merchants,
        and a large model of the town as it looked in 1600. The town council meets in the
        Guildhall on Fenwick Street, a timber-framed building completed in 1452. Harrowmere
        has a population of about 14,000 and is twinned with the island port of Lisk in the
        Meranthi archipelago."""),
                [
                    ("On what day of the week does Harrowmere hold its market?", "Thursday"),
                    ("When did the Heron Museum first open to visitors?", "1978"),
                    (
                        "What had the museum's building been used for before?",
                        "a former grain store",
                    ),
                    ("In which building does the town council gather?", "the Guildhall"),
                    ("What is the approximate population of Harrowmere?", "about 14,000"),
                    ("Which port is Harrowmere's twin town?", "Lisk"),
                ],
            ),
        ],
    ),
    (
        "Velland River",
        [
            (
                P("""The Velland is a river about 310 kilometres long that rises in the Tarrow
        Hills and flows east to the sea at Port Aldric. Its source is a cold spring known
        locally as Maiden's Cup, which lies at an altitude of 860 metres. In its upper
        reaches the river is narrow and fast, cutting a series of steep gorges through
        limestone. Below the village of Emble the valley widens, and the river slows into
        broad meanders bordered by water meadows. The Velland has eleven named tributaries,
        the largest of which is the Sorrel, which joins it just above Harrowmere."""),
                [
                    ("What is the length of the Velland?", "about 310 kilometres"),
                    ("Where does the Velland have its source?", "the Tarrow Hills"),
                    ("What do local people call the spring that feeds the river?", "Maiden's Cup"),
                    ("How high above sea level is the river's source?", "860 metres"),
                    ("Through what type of rock are the upper gorges cut?", "limestone"),
                    ("After which village does the valley become broader?", "Emble"),
                    ("Which tributary of the Velland is the biggest?", "the Sorrel"),
                ],
            ),
            (
                P("""For centuries the Velland was an important trade route. Flat-bottomed barges
        called keels carried timber, salt and grain between the inland towns and the coast.
        A system of nine locks was built between 1760 and 1795 to allow larger boats to pass
        the rapids at Dunmore Reach. Horses walked along a towpath on the northern bank,
        pulling the barges upstream at a pace of about four kilometres an hour. River traffic
        fell after the opening of the Sorrel Valley Railway, and the last commercial keel
        made its final journey in 1931."""),
                [
                    ("What name was given to the barges used on the Velland?", "keels"),
                    ("Apart from salt and grain, what cargo did the barges move?", "timber"),
                    ("How many locks were constructed on the river?", "nine"),
                    ("During which years was the lock system built?", "between 1760 and 1795"),
                    ("Which rapids could boats get past thanks to the locks?", "Dunmore Reach"),
                    ("What animals towed the barges against the current?", "Horses"),
                    ("In what year did the final commercial keel sail?", "1931"),
                ],
            ),
            (
                P("""Today the Velland is valued mainly for its wildlife. The river supports
        healthy populations of brown trout, otters and kingfishers, and its water meadows are
        home to the rare marsh fritillary butterfly. In 1989 the stretch between Emble and
        Harrowmere was declared a nature reserve, managed by the Velland Valley Trust.
        Volunteers from the trust count otter tracks every spring and remove invasive plants
        such as giant balsam from the banks. Water quality is tested monthly at six stations
        along the river."""),
                [
                    ("Which fish thrives in the Velland?", "brown trout"),
                    (
                        "What uncommon insect lives in the river's meadows?",
                        "marsh fritillary butterfly",
                    ),
                    ("When was part of the river made a nature reserve?", "1989"),
                    ("Which organisation runs the reserve?", "the Velland Valley Trust"),
                    ("What do the trust's volunteers survey each spring?", "otter tracks"),
                    (
                        "Name an invasive plant that volunteers clear from the banks.",
                        "giant balsam",
                    ),
                ],
            ),
        ],
    ),
    (
        "Orsolya Brandt",
        [
            (
                P("""Orsolya Brandt (1841–1913) was a naturalist and chemist who spent most of her
        career studying the pigments of lichens. She was born in the mountain town of Keszel,
        the youngest of five children of a pharmacist. Her father taught her to prepare plant
        extracts in the back room of his shop, and by the age of fourteen she was keeping
        detailed notebooks on the colours that different mosses and lichens produced when
        boiled. In 1862 she moved to the university city of Varnholm, where women were
        permitted to attend lectures but not to receive degrees."""),
                [
                    (
                        "What was the main subject of Orsolya Brandt's research?",
                        "the pigments of lichens",
                    ),
                    ("Where was Brandt born?", "Keszel"),
                    ("What job did Brandt's father have?", "a pharmacist"),
                    ("How many children were in Brandt's family?", "five"),
                    ("How old was Brandt when she kept notebooks on plant colours?", "fourteen"),
                    ("In what year did Brandt relocate to Varnholm?", "1862"),
                    ("What were women at Varnholm not allowed to obtain?", "degrees"),
                ],
            ),
            (
                P("""Brandt's most important discovery came in 1879, when she showed that a single
        lichen species could change colour depending on the amount of sunlight it received.
        She called this effect solar tinting and described it in a short paper read to the
        Varnholm Natural History Society. Although the society did not admit women as
        members, her results were presented on her behalf by her colleague Emil Stracke. The
        paper attracted little notice at first, but it was translated into three languages
        within a decade and is now regarded as an early contribution to the study of plant
        adaptation."""),
                [
                    ("In which year did Brandt make her most significant finding?", "1879"),
                    (
                        "What caused a lichen to change its colour?",
                        "the amount of sunlight it received",
                    ),
                    ("What did Brandt name the colour-changing effect?", "solar tinting"),
                    (
                        "Before which body was her paper read?",
                        "the Varnholm Natural History Society",
                    ),
                    ("Who delivered Brandt's results to the society?", "Emil Stracke"),
                    ("Into how many languages was the paper translated within ten years?", "three"),
                ],
            ),
            (
                P("""In later life Brandt ran a small dye workshop that used lichen extracts to
        colour silk, and she trained more than forty apprentices, most of them young women.
        She never married. Her herbarium of roughly 3,200 dried specimens was donated to the
        Varnholm Botanical Garden after her death, where it remains on display in a room
        named in her honour. A genus of orange lichens, Brandtia, was named after her in
        1934, and a street in her birthplace of Keszel also bears her name."""),
                [
                    ("Which fabric did Brandt's workshop colour?", "silk"),
                    ("How many apprentices did Brandt teach?", "more than forty"),
                    ("How many specimens were in Brandt's herbarium?", "roughly 3,200"),
                    (
                        "Where did the herbarium go after Brandt died?",
                        "the Varnholm Botanical Garden",
                    ),
                    ("What lichen genus honours Brandt?", "Brandtia"),
                    ("When was the genus given its name?", "1934"),
                ],
            ),
        ],
    ),
    (
        "Quillan loom",
        [
            (
                P("""The Quillan loom is a pedal-driven weaving machine invented in 1847 by the
        carpenter Tobias Quillan in the town of Fenmouth. Unlike earlier hand looms, which
        needed two operators for wide cloth, the Quillan design allowed one weaver to produce
        fabric up to 1.8 metres across. It achieved this with a spring-loaded shuttle that
        was thrown from side to side by a pair of leather straps. Quillan patented the
        mechanism in 1849 and sold the rights to the Fenmouth Weaving Company for 400
        guineas."""),
                [
                    ("What was Tobias Quillan's trade?", "carpenter"),
                    ("When was the Quillan loom invented?", "1847"),
                    ("In which town did Quillan create his loom?", ("Fenmouth", 1)),
                    (
                        "How many people did older hand looms require for wide fabric?",
                        "two operators",
                    ),
                    ("What was the greatest width of cloth the loom could weave?", "1.8 metres"),
                    ("What threw the shuttle back and forth?", "a pair of leather straps"),
                    (
                        "How much did Quillan receive for the rights to his invention?",
                        "400 guineas",
                    ),
                ],
            ),
            (
                P("""The loom works in a repeating cycle of three movements. First, the weaver
        presses the left pedal, which raises half of the warp threads to form an opening
        called the shed. Next, a catch releases the shuttle, which carries the weft thread
        through the shed to the far side. Finally, the right pedal swings a wooden comb, known
        as the beater, forward to press the new thread tightly against the finished cloth. A
        skilled operator could complete this cycle about sixty times a minute."""),
                [
                    ("How many movements make up one cycle of the loom?", "three"),
                    ("Which pedal lifts half of the warp?", "the left pedal"),
                    (
                        "What is the gap between the raised and lowered warp threads called?",
                        ("the shed", 1),
                    ),
                    ("What does the shuttle draw through the opening?", "the weft thread"),
                    ("What name is given to the wooden comb?", "the beater"),
                    (
                        "How many times per minute could an expert weaver repeat the cycle?",
                        "about sixty",
                    ),
                ],
            ),
            (
                P("""By 1870 more than two thousand Quillan looms were in use across the northern
        valleys, and the machine helped make Fenmouth a centre of the linen trade. However,
        the design had a serious weakness: the leather straps stretched in damp weather,
        causing the shuttle to jam. An improved model with steel springs was introduced in
        1882 by Quillan's granddaughter, Martha Quillan. Only about thirty original looms
        survive today, and a working example can be seen at the Fenmouth Textile Museum."""),
                [
                    ("How many Quillan looms were operating by 1870?", "more than two thousand"),
                    ("For which trade did Fenmouth become a centre?", "the linen trade"),
                    ("Under what conditions did the straps stretch?", "damp weather"),
                    ("What replaced the leather straps in the later model?", "steel springs"),
                    ("Who brought out the improved loom?", "Martha Quillan"),
                    (
                        "Where can visitors watch a Quillan loom working?",
                        "the Fenmouth Textile Museum",
                    ),
                ],
            ),
        ],
    ),
    (
        "Kessarine stew",
        [
            (
                P("""Kessarine stew is a slow-cooked dish of lamb, white beans and dried apricots
        from the hill country of Kessar. It is traditionally prepared in a heavy clay pot
        called a durra, which is sealed with a ring of bread dough so that no steam escapes.
        Families in Kessar cook the stew on the first day of the spring harvest, and it is
        customary for the eldest member of the household to serve the first portion. The
        name of the dish comes from the region itself rather than from any of its
        ingredients."""),
                [
                    ("Which meat goes into Kessarine stew?", "lamb"),
                    ("What is the name of the clay pot used for the stew?", "a durra"),
                    ("What is the pot sealed with?", "a ring of bread dough"),
                    (
                        "On what day do families traditionally make the stew?",
                        "the first day of the spring harvest",
                    ),
                    (
                        "Who by custom dishes out the first serving?",
                        "the eldest member of the household",
                    ),
                    ("Where does the stew get its name from?", "the region itself"),
                ],
            ),
            (
                P("""To prepare the stew, the beans are soaked overnight and the lamb is cut into
        pieces about the size of a walnut. The meat is browned in sheep's butter with onions,
        cumin and a pinch of saffron before the beans, apricots and water are added. The
        sealed pot is then placed in the embers of a wood fire, or in a low oven, for at least
        five hours. Cooks in the northern villages add a handful of crushed almonds near the
        end, while those in the south prefer chopped mint."""),
                [
                    ("For how long are the beans left to soak?", "overnight"),
                    ("How big should the pieces of lamb be?", "about the size of a walnut"),
                    ("In what fat is the lamb browned?", "sheep's butter"),
                    ("Which spice is added only in a small quantity?", "saffron"),
                    ("What is the shortest time the stew should cook?", "at least five hours"),
                    ("What do cooks in the north stir in near the end?", "crushed almonds"),
                    ("Which herb do southern cooks like to add?", "chopped mint"),
                ],
            ),
            (
                P("""The stew became known outside Kessar in the 1950s, when the cook Anwen Dalby
        included it in her book Kitchens of the High Valleys. Restaurants in Port Aldric began
        serving a quicker version made in pressure cookers, which purists criticised for
        lacking the smoky flavour of the traditional method. Since 2006 the village of Ossary
        has held an annual stew competition each April, in which around eighty cooks compete
        for a copper ladle awarded by a panel of five judges."""),
                [
                    ("In what decade did the stew become famous beyond Kessar?", "the 1950s"),
                    ("Which cook published a recipe for the stew?", "Anwen Dalby"),
                    ("What was the title of her cookbook?", "Kitchens of the High Valleys"),
                    (
                        "What appliance do Port Aldric restaurants use for a faster stew?",
                        "pressure cookers",
                    ),
                    (
                        "According to purists, what does the quick version lack?",
                        "the smoky flavour",
                    ),
                    ("What trophy goes to the winning cook?", "a copper ladle"),
                ],
            ),
        ],
    ),
    (
        "Brenwick Athletic F.C.",
        [
            (
                P("""Brenwick Athletic Football Club is a professional football club based in the
        industrial town of Brenwick. The club was founded in 1889 by workers from the Halloran
        ironworks, who played their first matches on a cinder pitch behind the foundry.
        Because of these origins the team is nicknamed the Smelters, and its badge shows a
        crossed hammer and ladle. Athletic wear amber shirts with black sleeves, a colour
        scheme chosen in 1902 after the original white kits proved impossible to keep
        clean."""),
                [
                    ("In what year was Brenwick Athletic formed?", "1889"),
                    ("Who established the club?", "workers from the Halloran ironworks"),
                    ("On what kind of ground were the earliest games played?", "a cinder pitch"),
                    ("By what nickname is the team known?", "the Smelters"),
                    ("What is pictured on the club's badge?", "a crossed hammer and ladle"),
                    ("What colour are the team's shirts?", "amber"),
                ],
            ),
            (
                P("""Athletic play their home games at Foundry Lane, a stadium with a capacity of
        18,400 that was rebuilt in 1997. The ground's most famous feature is the Kiln End, a
        steep terrace behind the northern goal where the loudest supporters stand. The club's
        record attendance of 31,215 was set in 1951 for a cup tie against Callowby Rovers.
        Brenwick's fiercest rivals are Harrowmere Town, and matches between the two sides are
        known locally as the Valley Derby."""),
                [
                    ("What is the name of Athletic's home ground?", "Foundry Lane"),
                    ("How many people can the stadium hold?", "18,400"),
                    ("In which year was the ground rebuilt?", "1997"),
                    ("Where is the Kiln End situated?", "behind the northern goal"),
                    ("What is the largest crowd ever recorded at the club?", "31,215"),
                    ("Against which team was the attendance record set?", "Callowby Rovers"),
                    ("What are fixtures against Harrowmere Town called?", "the Valley Derby"),
                ],
            ),
            (
                P("""The club's greatest success came in the 1963–64 season, when Athletic won the
        national cup by beating Port Aldric United 2–1 in the final. The winning goal was
        scored in the eighty-seventh minute by the winger Desmond Achebe-Lowe, who later
        became the club's manager. Athletic have spent most of their history in the second
        division but reached the top flight for four seasons during the 1970s. The club's
        all-time leading scorer is Ray Pellow, who scored 214 goals between 1948 and
        1961."""),
                [
                    ("In which season did Athletic lift the national cup?", "1963–64"),
                    ("Which team did Athletic defeat in the cup final?", "Port Aldric United"),
                    ("What was the final score?", "2–1"),
                    ("What position did Desmond Achebe-Lowe play?", "winger"),
                    ("Who is the club's record goalscorer?", "Ray Pellow"),
                    ("How many goals did Pellow score for Athletic?", "214"),
                ],
            ),
        ],
    ),
    (
        "Phases of the Moon",
        [
            (
                P("""The Moon produces no light of its own; it shines only because its surface
        reflects sunlight. As the Moon travels around the Earth, the half facing the Sun is
        always lit, but the amount of that bright half visible from Earth changes from night
        to night. These changing shapes are called phases. A complete cycle, from one new moon
        to the next, takes about 29.5 days, a period astronomers call the synodic month. This
        is a little longer than the 27.3 days the Moon needs to complete one orbit measured
        against the distant stars."""),
                [
                    ("Why does the Moon appear to glow?", "its surface reflects sunlight"),
                    (
                        "Which part of the Moon is illuminated at all times?",
                        "the half facing the Sun",
                    ),
                    ("What are the Moon's shifting shapes known as?", "phases"),
                    ("How long does one full cycle of lunar phases take?", "about 29.5 days"),
                    (
                        "What do astronomers call the interval between new moons?",
                        "the synodic month",
                    ),
                    (
                        "How long is the Moon's orbit when measured relative to the stars?",
                        "27.3 days",
                    ),
                ],
            ),
            (
                P("""At new moon the Moon lies roughly between the Earth and the Sun, so its lit side
        faces away from us and it is almost impossible to see. Over the following week a thin
        crescent grows on one side, an increase that observers describe as waxing. About
        seven days after new moon, half of the disc appears lit; this phase is confusingly
        called the first quarter, because the Moon has completed a quarter of its orbit. The
        bright portion keeps growing through the gibbous phase until the whole face is
        illuminated at full moon."""),
                [
                    (
                        "Where is the Moon located at the time of new moon?",
                        "between the Earth and the Sun",
                    ),
                    (
                        "Why is the Moon so difficult to observe at new moon?",
                        "its lit side faces away from us",
                    ),
                    ("What term is used for the growth of the lit crescent?", "waxing"),
                    ("How long after new moon is the first quarter?", "About seven days"),
                    (
                        "How much of its orbit has the Moon covered at first quarter?",
                        "a quarter of its orbit",
                    ),
                    (
                        "What phase lies between the first quarter and full moon?",
                        "the gibbous phase",
                    ),
                ],
            ),
            (
                P("""After full moon the process runs in reverse. The lit area shrinks, or wanes,
        through another gibbous phase to the last quarter, when the opposite half of the disc
        is bright. A waning crescent follows, visible mainly in the early morning sky before
        sunrise, and the cycle ends with the next new moon. Because the Moon rises about fifty
        minutes later each day, a full moon rises near sunset, while a last quarter moon
        usually does not appear until around midnight."""),
                [
                    ("What word describes the lit area getting smaller?", "wanes"),
                    ("Which phase follows the second gibbous phase?", "the last quarter"),
                    (
                        "When is a waning crescent mostly visible?",
                        "the early morning sky before sunrise",
                    ),
                    (
                        "By how much does moonrise shift from one day to the next?",
                        "about fifty minutes",
                    ),
                    ("At what time of day does a full moon come up?", "near sunset"),
                    ("Roughly when does the Moon at its last quarter come up?", "around midnight"),
                ],
            ),
        ],
    ),
    (
        "Meranthi Islands",
        [
            (
                P("""The Meranthi Islands are an archipelago of twenty-three islands in the warm Sea
        of Lorrac, of which only seven are permanently inhabited. The largest island, Great
        Meranthi, covers about 640 square kilometres and contains the chain's highest point,
        the extinct volcano Mount Orrel, which rises to 1,412 metres. The capital and main
        harbour, Lisk, lies on a sheltered bay on the western coast of Great Meranthi. The
        islands have a combined population of roughly 92,000, more than half of whom live in
        or around Lisk."""),
                [
                    ("How many islands make up the Meranthi archipelago?", "twenty-three"),
                    ("In which sea do the Meranthi Islands lie?", "Sea of Lorrac"),
                    ("How many of the islands have a permanent population?", "seven"),
                    ("What is the highest peak in the islands?", "Mount Orrel"),
                    ("What is the height of Mount Orrel?", "1,412 metres"),
                    ("Which is the islands' capital?", ("Lisk", 1)),
                    ("How many people live on the islands altogether?", "roughly 92,000"),
                ],
            ),
            (
                P("""The economy of the Meranthi Islands once depended almost entirely on the
        harvesting of sea sponges, which divers gathered from the reefs using weighted stones
        to descend quickly. The sponge trade collapsed in the 1940s after a disease wiped out
        most of the beds. Since then the islanders have turned to fishing, the growing of
        citrus fruit on terraced hillsides, and tourism. Visitors arrive mainly by ferry from
        the mainland port of Sable Point, a crossing of about nine hours, although a small
        airstrip near Lisk opened in 2011."""),
                [
                    ("What product was the islands' economy formerly based on?", "sea sponges"),
                    ("What did divers hold to sink fast?", "weighted stones"),
                    ("When did the sponge industry collapse?", "the 1940s"),
                    ("What destroyed most of the sponge beds?", "a disease"),
                    ("What crop is cultivated on the terraces?", "citrus fruit"),
                    ("From which mainland port do most visitors sail?", "Sable Point"),
                ],
            ),
            (
                P("""The islands have a mild climate with hot, dry summers and wet winters, when most
        of the annual 700 millimetres of rain falls. A strong northerly wind known as the
        skirra blows for several days at a time in late summer, often cancelling ferry
        services. Great Meranthi's forests of cork oak shelter a rare species of gecko found
        nowhere else, and the surrounding waters are an important breeding ground for
        loggerhead turtles. Since 1998 the eastern reefs have been protected as a marine park
        where fishing is forbidden."""),
                [
                    ("What is the islands' total yearly rainfall?", "700 millimetres"),
                    ("What name is given to the strong north wind?", "the skirra"),
                    ("What type of tree forms Great Meranthi's forests?", "cork oak"),
                    ("Which turtles breed in the nearby waters?", "loggerhead turtles"),
                    ("Since what year have the eastern reefs been protected?", "1998"),
                    ("What activity is not allowed in the marine park?", "fishing"),
                ],
            ),
        ],
    ),
    (
        "Orrel gecko",
        [
            (
                P("""The Orrel gecko is a small lizard found only in the cork oak forests of Great
        Meranthi. Adults reach about nine centimetres in length, including the tail, and are
        pale grey with a band of rust-coloured spots along each side. Like many geckos, it has
        toe pads covered in microscopic hairs that let it climb smooth bark and even cling
        upside down. It hunts moths, beetles and spiders at night and spends the day hidden in
        cracks in the bark, where its colouring makes it very hard to see."""),
                [
                    ("In what habitat is the Orrel gecko found?", "the cork oak forests"),
                    ("How long does an adult Orrel gecko grow?", "about nine centimetres"),
                    ("What is the main body colour of the gecko?", "pale grey"),
                    ("What colour are the spots on its flanks?", "rust-coloured"),
                    (
                        "What on the gecko's toe pads lets it grip smooth surfaces?",
                        "microscopic hairs",
                    ),
                    ("At what time of day does the gecko feed?", "at night"),
                    ("Where does the gecko hide in daylight?", "cracks in the bark"),
                ],
            ),
            (
                P("""The species was first described in 1926 by the naturalist Harriet Mbeki-Sand,
        who collected specimens during a survey of the island's reptiles. Females lay two
        hard-shelled eggs at a time, usually beneath loose bark, and the young hatch after
        about ten weeks. The population is estimated at fewer than 8,000 adults and is
        threatened by forest fires and by the clearing of woodland for farming. Since 2003 a
        breeding programme at the Lisk Natural History Museum has released more than 500
        captive-raised geckos into protected areas."""),
                [
                    ("When was the Orrel gecko first scientifically described?", "1926"),
                    ("Which naturalist first described the gecko?", "Harriet Mbeki-Sand"),
                    ("How many eggs does a female gecko produce at one time?", "two"),
                    ("How long is it before the eggs hatch?", "about ten weeks"),
                    ("How many adult geckos are thought to survive?", "fewer than 8,000"),
                    (
                        "Where is the captive breeding programme run?",
                        "the Lisk Natural History Museum",
                    ),
                ],
            ),
        ],
    ),
    (
        "Skellan Head Lighthouse",
        [
            (
                P("""Skellan Head Lighthouse stands on a granite headland at the mouth of the Velland
        estuary, guarding ships from the Carrick Shoals, a line of sandbanks that wrecked
        dozens of vessels in the eighteenth century. The present tower, 36 metres tall, was
        designed by the engineer Lydia Hawes and first lit on 1 November 1838. It replaced an
        earlier coal-fired beacon that was often invisible in fog. The tower is built of
        interlocking blocks of local stone, a technique that allows it to withstand waves
        breaking over the lower gallery during winter storms."""),
                [
                    (
                        "What hazard does Skellan Head Lighthouse warn ships about?",
                        "the Carrick Shoals",
                    ),
                    ("What kind of rock is the headland made of?", "granite"),
                    ("How tall is the current tower?", "36 metres"),
                    ("Which engineer designed the lighthouse?", "Lydia Hawes"),
                    ("On what date was the lamp lit for the first time?", "1 November 1838"),
                    ("What kind of light did the lighthouse replace?", "coal-fired beacon"),
                    ("How are the stones of the tower arranged?", "interlocking blocks"),
                ],
            ),
            (
                P("""Until 1962 the lighthouse was staffed by three keepers, who worked in shifts to
        trim the lamp wicks and wind the clockwork that turned the lens. The light flashes
        white twice every fifteen seconds, a pattern that lets sailors tell Skellan Head apart
        from neighbouring lights. Its great lens, made of 180 glass prisms, can be seen from up
        to 40 kilometres away in clear weather. In fog, a compressed-air horn sounded a long
        blast every minute. The station was fully automated in 1962, and the keepers' cottages
        now serve as holiday lets."""),
                [
                    ("How many keepers looked after the lighthouse?", "three"),
                    ("What pattern does the light show?", "twice every fifteen seconds"),
                    ("How many prisms is the lens made of?", "180"),
                    (
                        "From what distance can the light be seen on a clear night?",
                        "up to 40 kilometres",
                    ),
                    ("What signal was used in foggy weather?", "a compressed-air horn"),
                    ("In which year did the lighthouse become fully automatic?", ("1962", 2)),
                    ("What are the former keepers' houses now used as?", "holiday lets"),
                ],
            ),
        ],
    ),
    (
        "Beekeeping",
        [
            (
                P("""A honeybee colony is made up of three kinds of adult bee. The single queen is
        the only fully fertile female, and in the height of summer she may lay well over a
        thousand eggs a day. Workers, which are infertile females, make up the great majority
        of the colony and carry out nearly every task, from cleaning cells to collecting
        nectar. Drones are males whose sole purpose is to mate with a young queen from another
        colony; they have no sting and are driven out of the hive in autumn."""),
                [
                    ("How many types of adult bee live in a colony?", "three"),
                    ("How many eggs can a queen lay daily in midsummer?", "well over a thousand"),
                    ("What kind of bee are workers?", "infertile females"),
                    ("Which bees form most of the colony?", "Workers"),
                    ("What sex are drones?", "males"),
                    ("What happens to drones when autumn comes?", "driven out of the hive"),
                ],
            ),
            (
                P("""Beekeepers usually house their colonies in hives built from stacked wooden
        boxes. The lowest box, called the brood chamber, holds the queen and her developing
        young, while upper boxes known as supers store surplus honey. A flat grid called a
        queen excluder sits between them; its gaps are wide enough for workers but too narrow
        for the larger queen, so no eggs are laid in the honey. Removable frames allow the
        keeper to lift out each comb for inspection without destroying it."""),
                [
                    ("What are most beehives constructed from?", "stacked wooden boxes"),
                    ("What is the bottom box of a hive called?", "the brood chamber"),
                    ("What name is given to the boxes that hold extra honey?", "supers"),
                    (
                        "What device stops the queen from entering the honey boxes?",
                        "a queen excluder",
                    ),
                    (
                        "Why can the queen not pass through the grid?",
                        "too narrow for the larger queen",
                    ),
                    (
                        "What lets a beekeeper examine each comb without damaging it?",
                        "Removable frames",
                    ),
                ],
            ),
            (
                P("""Honey is made from nectar, a sugary liquid produced by flowers. Foragers carry
        nectar back to the hive in a special honey stomach and pass it to younger house bees,
        who spread it in thin layers across the comb. Fanning by thousands of wings evaporates
        much of the water, and when the moisture content falls below about 18 percent the bees
        seal each cell with a cap of wax. A strong colony in a good year may produce 25
        kilograms or more of surplus honey that the beekeeper can harvest."""),
                [
                    ("What raw material do bees turn into honey?", ("nectar", 1)),
                    ("In what organ do foragers transport nectar?", "a special honey stomach"),
                    ("Which bees receive the nectar from the foragers?", "younger house bees"),
                    ("How do bees remove water from the nectar?", "Fanning by thousands of wings"),
                    ("Below what moisture level are the cells sealed?", "about 18 percent"),
                    ("What material is used to cap the cells?", "wax"),
                    (
                        "How much surplus honey can a strong colony make in a good year?",
                        "25 kilograms or more",
                    ),
                ],
            ),
        ],
    ),
    (
        "Night of Lanterns",
        [
            (
                P("""The Night of Lanterns is an annual festival held in the hill city of Corvale on
        the last Saturday of October. According to local tradition, it commemorates the winter
        of 1523, when a lost shepherd named Pell Arvane was guided home through a snowstorm by
        the candles that townspeople placed in their windows. Today, residents hang paper
        lanterns from balconies and carry them in a procession that winds from the old
        cathedral to the Market Steps. The festival draws about 60,000 visitors, nearly
        doubling the city's population for the night."""),
                [
                    (
                        "On what date is the Night of Lanterns celebrated?",
                        "the last Saturday of October",
                    ),
                    ("Which year's events does the festival remember?", "1523"),
                    ("What was Pell Arvane's job?", "shepherd"),
                    ("What showed Pell Arvane the way home?", "the candles"),
                    ("From where does the procession set out?", "the old cathedral"),
                    ("Where does the parade finish?", "the Market Steps"),
                    ("How many people come to Corvale for the festival?", "about 60,000"),
                ],
            ),
            (
                P("""Lanterns for the festival are traditionally made from mulberry paper stretched
        over frames of split bamboo. Each district of Corvale competes to build the largest
        lantern, and the winning entry is hung above the cathedral door until the following
        spring. The record was set in 2008 by the Tanners' Quarter, whose lantern in the shape
        of a heron measured eleven metres from beak to tail. Children make smaller lanterns at
        school in the preceding weeks, often painting them with the names of relatives who have
        died during the year."""),
                [
                    ("What type of paper are festival lanterns made of?", "mulberry paper"),
                    ("What material forms the lantern frames?", "split bamboo"),
                    ("Where is the prize-winning lantern hung?", "above the cathedral door"),
                    (
                        "Which district holds the record for the biggest lantern?",
                        "the Tanners' Quarter",
                    ),
                    ("What animal did the record lantern depict?", "a heron"),
                    ("How long was the record-breaking lantern?", "eleven metres"),
                    (
                        "What do children frequently write on their lanterns?",
                        "the names of relatives",
                    ),
                ],
            ),
        ],
    ),
    (
        "Sorrel Valley Railway",
        [
            (
                P("""The Sorrel Valley Railway is a standard-gauge line, 58 kilometres long, that
        links the market town of Harrowmere with the quarrying village of Tallow Cross at the
        head of the Sorrel valley. It was promoted by a group of slate merchants who wanted a
        cheaper way to move stone to the river wharves, and its construction was approved by
        parliament in 1856. The engineer, Samuel Okonjo-Reeve, faced steep gradients in the
        upper valley and solved them with a horseshoe curve and a tunnel 640 metres long
        beneath Blackrigg Fell."""),
                [
                    ("How long is the Sorrel Valley Railway?", "58 kilometres"),
                    ("Which village is at the upper end of the line?", "Tallow Cross"),
                    ("Who campaigned for the railway to be built?", "a group of slate merchants"),
                    ("In which year did parliament authorise the railway?", "1856"),
                    ("Who engineered the line?", "Samuel Okonjo-Reeve"),
                    (
                        "Besides a tunnel, what did the engineer use to deal with the slopes?",
                        "a horseshoe curve",
                    ),
                    ("What is the length of the tunnel under Blackrigg Fell?", "640 metres"),
                ],
            ),
            (
                P("""The line opened to goods traffic in 1859 and to passengers a year later. At its
        busiest, around 1900, it carried 300,000 tonnes of slate annually as well as milk,
        timber and wool from the hill farms. Passenger trains were hauled by small tank engines
        painted in a distinctive olive green, and the journey from end to end took one hour and
        forty minutes. The railway remained independent until 1923, when it was absorbed into
        the Northern Counties Railway."""),
                [
                    ("When did freight trains start running on the line?", "1859"),
                    (
                        "How much slate did the railway move each year at its peak?",
                        "300,000 tonnes",
                    ),
                    ("What type of locomotive pulled the passenger trains?", "small tank engines"),
                    ("What colour were the engines painted?", "olive green"),
                    (
                        "How long did a trip along the whole line take?",
                        "one hour and forty minutes",
                    ),
                    ("Which company took over the line?", "the Northern Counties Railway"),
                ],
            ),
            (
                P("""Declining slate sales and competition from road haulage led to the closure of the
        line to passengers in 1964 and to all traffic in 1968. A preservation society formed
        the following year and, after two decades of volunteer work, reopened the first 12
        kilometres between Tallow Cross and the hamlet of Gorse Bank in 1991. The heritage
        railway now runs steam trains on weekends from April to October and carries around
        70,000 passengers a year. Its oldest working locomotive, named Countess of Emble, was
        built in 1874."""),
                [
                    ("What form of transport competed with the railway?", "road haulage"),
                    ("When did passenger services end?", "1964"),
                    ("In what year did the line close completely?", "1968"),
                    ("Which hamlet marks the end of the reopened section?", "Gorse Bank"),
                    (
                        "During which months do the heritage steam trains operate?",
                        "from April to October",
                    ),
                    ("How many passengers does the heritage line carry annually?", "around 70,000"),
                    ("What is the oldest working engine called?", "Countess of Emble"),
                ],
            ),
        ],
    ),
    (
        "Amberlow Codex",
        [
            (
                P("""The Amberlow Codex is an illuminated manuscript of 212 vellum pages containing a
        collection of herbal remedies, calendars and star charts. It was produced around 1380
        at the priory of Saint Wend near Callowby, probably by a team of four scribes whose
        different handwriting can still be distinguished. The codex takes its name from the
        Amberlow family, who kept it in their library for almost three hundred years. It is
        written mostly in Latin, with marginal notes in an early form of the local
        language."""),
                [
                    ("How many pages does the Amberlow Codex contain?", "212"),
                    ("On what material is the codex written?", "vellum"),
                    ("Approximately when was the manuscript made?", "around 1380"),
                    ("Where was the codex created?", "the priory of Saint Wend"),
                    ("How many scribes probably worked on it?", "four"),
                    ("What language is most of the codex written in?", "Latin"),
                ],
            ),
            (
                P("""The codex disappeared in 1789 during a fire at Amberlow Hall and was long
        believed destroyed. In 1902, however, a bookseller named Ezra Vantongeren found it
        wrapped in oilcloth at the bottom of a sea chest bought at an auction in Port Aldric.
        Scorch marks on the outer pages confirmed its identity. After a dispute over ownership
        that lasted six years, the manuscript was purchased by the Callowby City Library, where
        it is kept in a climate-controlled vault and shown to the public only one week each
        year."""),
                [
                    ("In what year did the codex go missing?", "1789"),
                    ("What event led to the codex being lost?", "a fire at Amberlow Hall"),
                    ("Who found the manuscript again?", "Ezra Vantongeren"),
                    ("What was the codex wrapped in when it was found?", "oilcloth"),
                    (
                        "What evidence proved the manuscript was the real codex?",
                        "Scorch marks on the outer pages",
                    ),
                    ("How long did the argument over ownership go on?", "six years"),
                    ("Which institution bought the codex?", "the Callowby City Library"),
                ],
            ),
            (
                P("""Scholars value the Amberlow Codex chiefly for its star charts, which show 1,022
        stars arranged in forty-eight constellations. Several of the charts record a bright new
        star that appeared in the constellation of the Swan, and historians have used the
        scribes' notes to date that event to the spring of 1372. The herbal section describes
        more than 300 plants, each accompanied by a painted illustration and a short verse to
        help readers remember its uses. A full digital facsimile was published online in
        2015."""),
                [
                    ("Which part of the codex do scholars prize most?", "its star charts"),
                    ("How many stars are shown in the charts?", "1,022"),
                    ("Into how many constellations are the stars grouped?", "forty-eight"),
                    ("In which constellation did a new star appear?", "the Swan"),
                    (
                        "When, according to historians, did the new star appear?",
                        "the spring of 1372",
                    ),
                    ("How many plants are covered in the herbal section?", "more than 300"),
                    ("When was a digital copy of the codex put online?", "2015"),
                ],
            ),
        ],
    ),
    (
        "Glassblowing",
        [
            (
                P("""Glassblowing is the craft of shaping molten glass by inflating it through a
        hollow metal tube called a blowpipe. The raw material is usually a mixture of silica
        sand, soda ash and limestone, which is melted in a furnace at temperatures of around
        1,100 degrees Celsius. The glassblower dips the end of the blowpipe into the furnace and
        turns it slowly to gather a glowing lump of glass, known as a gather. Blowing gently
        into the pipe produces a bubble that can then be stretched, swung or pressed into
        shape."""),
                [
                    ("What is the hollow tube used by glassblowers called?", "a blowpipe"),
                    (
                        "Apart from soda ash and limestone, what goes into the raw mixture?",
                        "silica sand",
                    ),
                    (
                        "At about what temperature is the glass melted?",
                        "around 1,100 degrees Celsius",
                    ),
                    ("What is the glowing lump collected on the pipe called?", "a gather"),
                    ("What forms when the glassblower blows into the pipe?", "a bubble"),
                    ("In what is the raw mixture melted?", ("a furnace", 1)),
                ],
            ),
            (
                P("""Throughout the work the piece must be kept hot, so the glassblower repeatedly
        returns it to a smaller furnace called the glory hole. Shaping is done on a steel table
        known as a marver and with simple tools such as wooden blocks soaked in water, metal
        tongs called jacks, and damp pads of folded newspaper. Once finished, the object cannot
        simply be left to cool in the open air, or it would crack. Instead it is placed in an
        annealing oven, where the temperature is lowered slowly over many hours."""),
                [
                    ("What is the small furnace used for reheating called?", "the glory hole"),
                    ("What is the steel working table called?", "a marver"),
                    ("What are jacks?", "metal tongs"),
                    ("What are the wooden shaping blocks soaked in?", "water"),
                    (
                        "What would happen to a finished piece cooled in the open air?",
                        "it would crack",
                    ),
                    ("Where is a finished piece put to cool?", "an annealing oven"),
                    ("How is the temperature of the oven reduced?", "slowly over many hours"),
                ],
            ),
        ],
    ),
    (
        "Ashgrove Observatory",
        [
            (
                P("""Ashgrove Observatory is an astronomical research station on the summit of Kellan
        Pike, at an elevation of 2,380 metres. The site was chosen in 1954 after a three-year
        survey found that the mountain enjoyed more than 250 clear nights a year and very little
        light pollution. Its first instrument, a refracting telescope with a lens 60
        centimetres wide, was installed in 1958 and is still used for teaching. The observatory
        is operated jointly by the universities of Varnholm and Callowby."""),
                [
                    ("On which mountain is Ashgrove Observatory built?", "Kellan Pike"),
                    ("How high is the observatory?", "2,380 metres"),
                    ("In what year was the site selected?", "1954"),
                    ("How many cloudless nights does the mountain get annually?", "more than 250"),
                    ("What type of telescope was installed first?", "a refracting telescope"),
                    ("What is the first telescope used for today?", "teaching"),
                    ("Who operates the observatory?", "the universities of Varnholm and Callowby"),
                ],
            ),
            (
                P("""The observatory's largest instrument is the Mirren Telescope, a reflector with a
        main mirror 3.2 metres across that began operating in 1986. The mirror was cast from a
        special low-expansion glass and took nearly two years to grind and polish. The
        telescope is used mainly to study variable stars, whose brightness rises and falls over
        periods ranging from hours to years. In 2004 astronomers at Ashgrove discovered a pair
        of stars that orbit each other every 38 minutes, one of the shortest orbital periods
        then known."""),
                [
                    ("What is Ashgrove's biggest telescope called?", "the Mirren Telescope"),
                    ("What is the diameter of its main mirror?", "3.2 metres"),
                    ("When did the Mirren Telescope come into service?", "1986"),
                    ("How long did grinding and polishing the mirror take?", "nearly two years"),
                    (
                        "What kind of stars is the telescope mostly used to observe?",
                        "variable stars",
                    ),
                    ("In what year was the fast-orbiting pair of stars found?", "2004"),
                    ("How long does that pair of stars take to circle each other?", "38 minutes"),
                ],
            ),
            (
                P("""Life at the summit can be harsh. Winter temperatures often fall below minus twenty
        degrees, and the single road to the top is closed by snow for up to four months a year.
        During these periods staff travel by a cable car that climbs 900 metres from the village
        of Hesket. Around a dozen people work at the observatory at any one time, living in a
        small residence block with its own kitchen, library and greenhouse, where fresh
        vegetables are grown under lamps."""),
                [
                    (
                        "How cold does it often get at the summit in winter?",
                        "below minus twenty degrees",
                    ),
                    ("For how long each year can the road be shut?", "up to four months"),
                    ("How do staff reach the observatory when the road is closed?", "a cable car"),
                    ("Which village does the cable car leave from?", "Hesket"),
                    ("How many staff are at the observatory at one time?", "Around a dozen"),
                    ("What is grown in the greenhouse?", "fresh vegetables"),
                ],
            ),
        ],
    ),
    (
        "Dunmore Mill",
        [
            (
                P("""Dunmore Mill is a tower windmill built in 1791 on a low ridge above the Velland,
        near the village of Dunmore. Its brick tower is five storeys high and is topped by a
        wooden cap that can rotate so that the four sails always face into the wind. The cap
        is turned automatically by a fantail, a small wheel of vanes mounted at the back, which
        spins whenever the wind shifts direction and drives gears that move the cap around. The
        mill ground wheat and barley for local farms until 1938."""),
                [
                    ("What kind of windmill is Dunmore Mill?", "a tower windmill"),
                    ("When was the mill constructed?", "1791"),
                    ("How many floors does the tower have?", "five"),
                    ("How many sails does the mill carry?", "four"),
                    ("What device turns the cap to face the wind?", "a fantail"),
                    ("Which crops did the mill grind?", "wheat and barley"),
                    ("Until what year did the mill grind grain for farmers?", "1938"),
                ],
            ),
            (
                P("""Inside the mill, the turning sails drive a large wheel called the brake wheel,
        which transfers power to an upright shaft running down the centre of the tower. On the
        third floor, this shaft turns two pairs of millstones, each weighing more than a tonne.
        Grain is fed from a hopper into a hole in the centre of the upper stone, known as the
        runner, and is crushed against the fixed lower stone, called the bedstone. The flour is
        pushed outward by grooves cut into the stones and falls through a chute into sacks
        below."""),
                [
                    ("What is the large wheel driven by the sails called?", "the brake wheel"),
                    ("On which floor are the millstones located?", "the third floor"),
                    ("How much does each millstone weigh?", "more than a tonne"),
                    ("From what is grain fed into the stones?", "a hopper"),
                    ("What name is given to the upper millstone?", "the runner"),
                    ("What is the stationary bottom stone called?", "the bedstone"),
                    (
                        "What moves the flour towards the edge of the stones?",
                        "grooves cut into the stones",
                    ),
                ],
            ),
        ],
    ),
    (
        "University of Varnholm",
        [
            (
                P("""The University of Varnholm is one of the oldest universities in the northern
        provinces, founded in 1421 by Bishop Aldo Verrin to train clergy and lawyers. Its
        original building, the Old Quadrangle, still stands beside the river and houses the
        university library. For most of its history Varnholm taught only theology, law and
        medicine, but a faculty of natural sciences was added in 1811. Women were first
        admitted as full degree students in 1891, almost thirty years after the chemist Orsolya
        Brandt had attended lectures there without being allowed to graduate."""),
                [
                    ("In what year was the University of Varnholm established?", "1421"),
                    ("Who founded the university?", "Bishop Aldo Verrin"),
                    ("What was the university originally meant to train?", "clergy and lawyers"),
                    ("What is the university's oldest building called?", "the Old Quadrangle"),
                    ("What does the oldest building contain today?", "the university library"),
                    ("In which year did the university begin teaching natural sciences?", "1811"),
                    ("When were women first able to enrol for full degrees?", "1891"),
                ],
            ),
            (
                P("""Today the university has around 27,000 students spread across eleven faculties
        and a main campus on the eastern edge of the city. Its colours are dark blue and
        silver, and its motto, Lux per laborem, means light through work. Each May the students
        hold a boat race on the river against their rivals from Callowby, a contest first rowed
        in 1867. Varnholm's research is particularly strong in botany and geology, and the
        university manages both the Botanical Garden and a share of Ashgrove
        Observatory."""),
                [
                    ("How many students does Varnholm have now?", "around 27,000"),
                    ("Into how many faculties is the university divided?", "eleven"),
                    ("What are the university's official colours?", "dark blue and silver"),
                    ("What does Lux per laborem mean?", "light through work"),
                    ("When was the race against Callowby first held?", "1867"),
                    (
                        "In which subjects is Varnholm's research especially strong?",
                        "botany and geology",
                    ),
                ],
            ),
        ],
    ),
]

# ---------------------------------------------------------------------------
# DEV (held-out articles): answers are lists of 1-3 acceptable specs
# ---------------------------------------------------------------------------

DEV = [
    (
        "Fennick cheese",
        [
            (
                P("""Fennick is a hard cheese made from the milk of sheep grazing the upland pastures
        around the village of Fennick Moor. It is produced in large wheels weighing about twelve
        kilograms, which are pressed in cloth and then rubbed with salt and crushed juniper
        berries. The cheese is aged for a minimum of ten months in limestone caves, where a
        constant temperature of nine degrees and high humidity encourage the growth of a thin
        grey rind. Mature Fennick has a crumbly texture and a sharp, slightly nutty
        flavour."""),
                [
                    ("Which animal's milk is used for Fennick?", ["sheep"]),
                    (
                        "How heavy is a wheel of Fennick?",
                        ["about twelve kilograms", "twelve kilograms"],
                    ),
                    (
                        "Besides salt, what is rubbed into the cheese?",
                        ["crushed juniper berries", "juniper berries"],
                    ),
                    (
                        "What is the shortest time Fennick must be aged?",
                        ["a minimum of ten months", "ten months"],
                    ),
                    ("Where does the cheese mature?", ["limestone caves", "in limestone caves"]),
                    (
                        "What temperature is maintained in the caves?",
                        ["nine degrees", "a constant temperature of nine degrees"],
                    ),
                    (
                        "How is the taste of mature Fennick described?",
                        ["sharp, slightly nutty", "a sharp, slightly nutty flavour"],
                    ),
                ],
            ),
            (
                P("""Cheesemaking at Fennick Moor is recorded as early as 1307, when the abbey of Hollin
        accepted cheeses in place of rent from its tenants. In 1998 Fennick received protected
        status, meaning that only cheese produced within a defined area of 140 square kilometres
        may carry the name. Fewer than twenty farms now make it, and total output is about 300
        tonnes a year. The cheese is traditionally eaten with pickled walnuts and dark rye
        bread, and a local festival celebrating it takes place every September."""),
                [
                    (
                        "When is cheesemaking at Fennick Moor first mentioned in records?",
                        ["1307", "as early as 1307"],
                    ),
                    ("Which abbey took cheese instead of rent?", ["the abbey of Hollin", "Hollin"]),
                    ("In what year did Fennick gain protected status?", ["1998"]),
                    (
                        "How big is the area in which Fennick may be made?",
                        ["140 square kilometres"],
                    ),
                    (
                        "How many farms produce Fennick today?",
                        ["Fewer than twenty", "Fewer than twenty farms"],
                    ),
                    (
                        "What is Fennick's annual production?",
                        ["about 300 tonnes", "300 tonnes a year"],
                    ),
                    (
                        "What foods is Fennick customarily served with?",
                        ["pickled walnuts and dark rye bread", "pickled walnuts"],
                    ),
                ],
            ),
        ],
    ),
    (
        "Ilse Varga",
        [
            (
                P("""Ilse Varga (1902–1977) was a composer and organist whose music drew heavily on the
        folk songs of her native Tessarine coast. She began playing the organ at the age of
        seven in the fishing town of Marrow Quay, where her mother led the church choir. After
        studying at the Conservatory of Ost-Hallen, she spent three summers travelling by
        bicycle from village to village, writing down more than 900 songs sung by fishermen, net
        menders and their families. These melodies later appeared in nearly all of her major
        works."""),
                [
                    ("Which instrument did Varga learn as a child?", ["the organ", "organ"]),
                    ("At what age did Varga start to play?", ["seven", "the age of seven"]),
                    ("In which town did Varga begin her musical life?", ["Marrow Quay"]),
                    ("Who led the church choir in Varga's home town?", ["her mother"]),
                    (
                        "Where did Varga receive her musical training?",
                        ["the Conservatory of Ost-Hallen", "Conservatory of Ost-Hallen"],
                    ),
                    (
                        "How did Varga get around while collecting songs?",
                        ["by bicycle", "travelling by bicycle"],
                    ),
                    ("How many folk songs did Varga write down?", ["more than 900", "900"]),
                ],
            ),
            (
                P("""Varga's best-known work is the Tide Symphony, first performed in 1938, in which each
        of the four movements represents a different hour of a fisherman's day. The piece is
        unusual for including a part for a ship's bell, played by a percussionist standing at
        the back of the orchestra. She also wrote two operas, more than sixty choral pieces and
        a large body of organ music. From 1946 until her retirement she taught composition at
        Ost-Hallen, where her students included the conductor Piet Lammers."""),
                [
                    ("What is Varga's most famous piece?", ["the Tide Symphony", "Tide Symphony"]),
                    ("In what year was the symphony first played?", ["1938"]),
                    ("How many movements does the symphony contain?", ["four", "four movements"]),
                    (
                        "What unusual instrument is heard in the symphony?",
                        ["a ship's bell", "ship's bell"],
                    ),
                    ("How many operas did Varga compose?", ["two", "two operas"]),
                    ("What did Varga teach at Ost-Hallen?", ["composition"]),
                    (
                        "Which conductor was one of Varga's pupils?",
                        ["Piet Lammers", "the conductor Piet Lammers"],
                    ),
                ],
            ),
        ],
    ),
    (
        "Lake Tormund",
        [
            (
                P("""Lake Tormund is a long, narrow freshwater lake lying in a glacial valley between the
        Skarr and Elden mountain ranges. It stretches for 34 kilometres but is nowhere more than
        two kilometres wide, and at its deepest point, near the village of Oskeby, it reaches
        212 metres. The lake was carved by a glacier during the last ice age and is fed mainly
        by meltwater streams from the surrounding peaks. Its only outflow is the Tor River,
        which leaves the southern end through a narrow rocky gorge."""),
                [
                    (
                        "Between which mountain ranges does Lake Tormund lie?",
                        ["the Skarr and Elden mountain ranges", "Skarr and Elden"],
                    ),
                    ("What is the length of Lake Tormund?", ["34 kilometres"]),
                    (
                        "What is the greatest width of the lake?",
                        ["two kilometres", "nowhere more than two kilometres"],
                    ),
                    ("How deep is the lake at its deepest?", ["212 metres"]),
                    ("Which village is close to the deepest part of the lake?", ["Oskeby"]),
                    (
                        "What mainly supplies the lake with water?",
                        ["meltwater streams", "meltwater streams from the surrounding peaks"],
                    ),
                    ("Which river flows out of the lake?", ["the Tor River", "Tor River"]),
                ],
            ),
            (
                P("""Because of its depth, Lake Tormund rarely freezes completely; the last time it did
        so was in the severe winter of 1947. The water is very clear and cold, and it supports
        a rare species of char that lives only in the deepest layers of the lake. A paddle
        steamer, the Ingrid, has carried passengers between Oskeby and the town of Halvik at the
        northern end since 1912. In summer the lake is popular for sailing and swimming, while
        the steep slopes above it are known for their walking trails and waterfalls."""),
                [
                    (
                        "When did the lake last freeze over entirely?",
                        ["1947", "the severe winter of 1947"],
                    ),
                    ("What rare fish lives in Lake Tormund?", ["char", "a rare species of char"]),
                    (
                        "In which part of the lake are the fish found?",
                        ["the deepest layers", "the deepest layers of the lake"],
                    ),
                    ("What is the name of the paddle steamer?", ["the Ingrid", "Ingrid"]),
                    ("Which town lies at the north end of the lake?", ["Halvik"]),
                    ("Since when has the steamer carried passengers?", ["1912", "since 1912"]),
                    (
                        "What attracts walkers to the slopes above the lake?",
                        ["walking trails and waterfalls", "their walking trails and waterfalls"],
                    ),
                ],
            ),
        ],
    ),
    (
        "Hollis arithmometer",
        [
            (
                P("""The Hollis Arithmometer was a hand-cranked mechanical calculator designed in 1874
        by the instrument maker Clara Hollis. It could add, subtract, multiply and divide
        numbers of up to twelve digits. Numbers were entered by sliding small brass levers along
        slots on the top plate, and each turn of the crank advanced a stepped drum that carried
        the result to a row of numbered wheels. Multiplication was carried out by repeated
        addition, so multiplying by seven meant turning the crank seven times."""),
                [
                    (
                        "Who was the designer of the Hollis Arithmometer?",
                        ["Clara Hollis", "the instrument maker Clara Hollis"],
                    ),
                    ("In what year was the arithmometer designed?", ["1874"]),
                    (
                        "What was the largest number of digits the machine could handle?",
                        ["twelve", "up to twelve digits"],
                    ),
                    (
                        "How were numbers put into the machine?",
                        ["by sliding small brass levers", "small brass levers"],
                    ),
                    (
                        "Which part passed the result to the numbered wheels?",
                        ["a stepped drum", "stepped drum"],
                    ),
                    (
                        "How did the calculator multiply?",
                        ["by repeated addition", "repeated addition"],
                    ),
                    (
                        "How many turns of the handle were needed to multiply by seven?",
                        ["seven times"],
                    ),
                ],
            ),
            (
                P("""About 2,600 arithmometers were produced at the Hollis workshop in Varnholm between
        1876 and 1909. Most were bought by banks, insurance offices and railway companies, which
        needed to perform long columns of calculations every day. A standard model weighed nine
        kilograms and sold for the price of roughly three months' wages for a clerk. Production
        ended when cheaper electric calculators arrived from abroad, but many machines stayed in
        use until the 1950s. A complete example is displayed in the Callowby Museum of
        Science."""),
                [
                    ("How many arithmometers were manufactured?", ["About 2,600", "2,600"]),
                    ("In which city was the Hollis workshop?", ["Varnholm", "in Varnholm"]),
                    (
                        "Name one kind of customer that bought the machines.",
                        ["banks", "insurance offices", "railway companies"],
                    ),
                    ("What did a standard arithmometer weigh?", ["nine kilograms"]),
                    (
                        "A standard model cost about the same as how much of a clerk's pay?",
                        ["roughly three months' wages", "three months' wages"],
                    ),
                    (
                        "What brought production to an end?",
                        [
                            "cheaper electric calculators",
                            "cheaper electric calculators arrived from abroad",
                        ],
                    ),
                    (
                        "Where is a complete arithmometer on show?",
                        ["the Callowby Museum of Science", "Callowby Museum of Science"],
                    ),
                ],
            ),
        ],
    ),
    (
        "Comets",
        [
            (
                P("""A comet is a small icy body that orbits the Sun, often on a long, stretched-out
        path. Its solid centre, called the nucleus, is typically only a few kilometres across
        and is made of frozen water, dust and rock, a mixture sometimes described as a dirty
        snowball. Far from the Sun the nucleus is cold and dark. As it approaches the inner
        solar system, sunlight warms the ice, which turns directly into gas and releases dust,
        forming a glowing cloud around the nucleus known as the coma."""),
                [
                    (
                        "What kind of path does a comet often follow?",
                        ["a long, stretched-out path", "long, stretched-out"],
                    ),
                    (
                        "What is the solid core of a comet called?",
                        [("the nucleus", 1), ("nucleus", 1)],
                    ),
                    (
                        "How big is a typical comet nucleus?",
                        ["only a few kilometres across", "a few kilometres across"],
                    ),
                    ("What materials make up the nucleus?", ["frozen water, dust and rock"]),
                    (
                        "What informal phrase is used for the mixture in a comet's core?",
                        ["a dirty snowball", "dirty snowball"],
                    ),
                    ("What heats a comet's ice as it nears the Sun?", ["sunlight"]),
                    (
                        "What is the glowing cloud surrounding the nucleus named?",
                        ["the coma", "coma"],
                    ),
                ],
            ),
            (
                P("""Close to the Sun, a comet may develop two separate tails. The dust tail is broad,
        curved and yellowish, because it reflects sunlight. The ion tail is narrower and often
        bluish; it consists of electrically charged gas pushed away by the solar wind, so it
        always points almost directly away from the Sun. Comets that return within about 200
        years are called short-period comets and are thought to come from a region beyond the
        planet Neptune. Those with much longer orbits may take many thousands of years to
        complete a single circuit."""),
                [
                    (
                        "How many tails can form on a comet near the Sun?",
                        ["two", "two separate tails"],
                    ),
                    ("What colour is the dust tail?", ["yellowish"]),
                    ("What is the ion tail composed of?", ["electrically charged gas"]),
                    (
                        "What drives the ion tail away from the Sun?",
                        ["the solar wind", "solar wind"],
                    ),
                    (
                        "What are comets that come back within about two centuries called?",
                        ["short-period comets"],
                    ),
                    (
                        "Where do short-period comets probably originate?",
                        ["a region beyond the planet Neptune", "beyond the planet Neptune"],
                    ),
                    (
                        "How long can comets with very long orbits take to go around once?",
                        ["many thousands of years"],
                    ),
                ],
            ),
        ],
    ),
    (
        "Kelderfield Marathon",
        [
            (
                P("""The Kelderfield Marathon is a road race held each March through the streets of the
        river city of Kelderfield. It was first run in 1979, when 312 runners set off from the
        steps of the city hall; today the field is capped at 22,000. The course follows the full
        marathon distance of 42.195 kilometres and is famous for crossing the river four times,
        using each of the city's historic stone bridges. Its most difficult section is Gallows
        Hill, a steep climb that runners face at around the thirty-kilometre mark."""),
                [
                    (
                        "In which month does the Kelderfield Marathon take place?",
                        ["March", "each March"],
                    ),
                    ("When was the marathon first held?", ["1979"]),
                    ("How many runners started the first race?", ["312", "312 runners"]),
                    ("What is the maximum number of entrants allowed today?", ["22,000"]),
                    ("How often does the route cross the river?", ["four times", "four"]),
                    ("What is the toughest part of the route?", ["Gallows Hill"]),
                    (
                        "At roughly what distance do runners reach the steep climb?",
                        ["around the thirty-kilometre mark", "the thirty-kilometre mark"],
                    ),
                ],
            ),
            (
                P("""The men's course record of 2 hours 6 minutes and 41 seconds was set in 2017 by
        Samuel Kiprono-Dahl, while the women's record belongs to Annika Ferreira-Holm, who won
        in 2 hours 21 minutes and 9 seconds in 2019. Since 1995 the race has also included a
        wheelchair division. Finishers receive a bronze medal shaped like one of the four
        bridges, and a different bridge is featured each year. The event raises more than a
        million crowns annually for local charities, most of it through sponsored
        runners."""),
                [
                    (
                        "What is the men's record time for the course?",
                        ["2 hours 6 minutes and 41 seconds"],
                    ),
                    ("Whose name is attached to the fastest men's time?", ["Samuel Kiprono-Dahl"]),
                    ("In which year was the women's record set?", ["2019"]),
                    ("Since when has the race had a wheelchair category?", ["1995", "Since 1995"]),
                    ("What does every finisher get?", ["a bronze medal", "bronze medal"]),
                    (
                        "How much money does the marathon raise each year?",
                        ["more than a million crowns", "a million crowns"],
                    ),
                    (
                        "How is most of the charity money raised?",
                        ["through sponsored runners", "sponsored runners"],
                    ),
                ],
            ),
        ],
    ),
]


# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------


def _bounded(context: str, start: int, text: str) -> bool:
    """True when context[start:start+len(text)] is not glued to letters/digits."""
    end = start + len(text)
    if text[0].isalnum() and start > 0 and context[start - 1].isalnum():
        return False
    if text[-1].isalnum() and end < len(context) and context[end].isalnum():
        return False
    return True


def occurrences(context: str, text: str) -> list[int]:
    """Start offsets (via str.find) of every whole-word occurrence of text."""
    found, pos = [], context.find(text)
    while pos != -1:
        if _bounded(context, pos, text):
            found.append(pos)
        pos = context.find(text, pos + 1)
    return found


def locate(context: str, spec: AnswerSpec, where: str) -> dict:
    """Turn an answer spec into a SQuAD answer dict with a verified answer_start."""
    if isinstance(spec, tuple):
        text, nth = spec
    else:
        text, nth = spec, None
    if not text or text != text.strip():
        raise AssertionError(f"{where}: empty or padded answer {text!r}")
    occ = occurrences(context, text)
    if not occ:
        raise AssertionError(f"{where}: answer {text!r} not found in context")
    if nth is None:
        if len(occ) != 1:
            raise AssertionError(
                f"{where}: answer {text!r} occurs {len(occ)} times; give (text, n)"
            )
        start = occ[0]
    else:
        if not 1 <= nth <= len(occ):
            raise AssertionError(
                f"{where}: occurrence {nth} of {text!r} requested, {len(occ)} exist"
            )
        start = occ[nth - 1]
    if context[start : start + len(text)] != text:
        raise AssertionError(f"{where}: offset check failed for {text!r}")
    if len(text.split()) > MAX_ANSWER_WORDS:
        raise AssertionError(f"{where}: answer {text!r} is too long")
    return {"text": text, "answer_start": start}


def build_split(articles: list, split: str, multi: bool) -> dict:
    data, n = [], 0
    for title, paragraphs in articles:
        out_pars = []
        for p_idx, (context, qas) in enumerate(paragraphs):
            where_p = f"{split}/{title}/p{p_idx}"
            words = len(context.split())
            if not MIN_WORDS <= words <= MAX_WORDS:
                raise AssertionError(f"{where_p}: {words} words (want {MIN_WORDS}-{MAX_WORDS})")
            if not MIN_QAS <= len(qas) <= MAX_QAS:
                raise AssertionError(f"{where_p}: {len(qas)} questions (want {MIN_QAS}-{MAX_QAS})")
            out_qas = []
            for question, spec in qas:
                n += 1
                qid = f"demo-{split}-{n:04d}"
                where = f"{where_p} {qid}"
                if not question.rstrip().endswith(("?", ".")):
                    raise AssertionError(f"{where}: question should end with '?' or '.'")
                if question.rstrip("?.").lower() in context.lower():
                    raise AssertionError(f"{where}: question copied verbatim from context")
                specs = spec if isinstance(spec, list) else [spec]
                if not multi and len(specs) != 1:
                    raise AssertionError(f"{where}: train questions take exactly one answer")
                if not 1 <= len(specs) <= 3:
                    raise AssertionError(f"{where}: want 1-3 answer variants")
                answers = [locate(context, s, where) for s in specs]
                if len({(a["text"], a["answer_start"]) for a in answers}) != len(answers):
                    raise AssertionError(f"{where}: duplicate answer variants")
                out_qas.append({"id": qid, "question": question, "answers": answers})
            out_pars.append({"context": context, "qas": out_qas})
        data.append({"title": title, "paragraphs": out_pars})
    return {"version": "1.1", "data": data}


def _check_disjoint(train: dict, dev: dict) -> None:
    t_titles = [a["title"] for a in train["data"]]
    d_titles = [a["title"] for a in dev["data"]]
    if len(set(t_titles)) != len(t_titles) or len(set(d_titles)) != len(d_titles):
        raise AssertionError("duplicate article titles within a split")
    if set(t_titles) & set(d_titles):
        raise AssertionError(f"titles shared by train and dev: {set(t_titles) & set(d_titles)}")
    contexts = [p["context"] for s in (train, dev) for a in s["data"] for p in a["paragraphs"]]
    if len(set(contexts)) != len(contexts):
        raise AssertionError("duplicate contexts")
    ids = [
        q["id"] for s in (train, dev) for a in s["data"] for p in a["paragraphs"] for q in p["qas"]
    ]
    if len(set(ids)) != len(ids):
        raise AssertionError("duplicate question ids")


def counts(dataset: dict) -> tuple[int, int, int, int]:
    arts = len(dataset["data"])
    pars = sum(len(a["paragraphs"]) for a in dataset["data"])
    qs = sum(len(p["qas"]) for a in dataset["data"] for p in a["paragraphs"])
    ans = sum(len(q["answers"]) for a in dataset["data"] for p in a["paragraphs"] for q in p["qas"])
    return arts, pars, qs, ans


def serialize(dataset: dict) -> str:
    return json.dumps(dataset, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; fail if train.json/dev.json differ from the sources",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=HERE,
        help="where to write train.json and dev.json (default: next to this script)",
    )
    args = parser.parse_args(argv)

    splits = {
        "train": build_split(TRAIN, "train", multi=False),
        "dev": build_split(DEV, "dev", multi=True),
    }
    _check_disjoint(splits["train"], splits["dev"])

    stale = []
    for name, dataset in splits.items():
        path = args.out_dir / f"{name}.json"
        text = serialize(dataset)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        arts, pars, qs, ans = counts(dataset)
        print(
            f"{name}: {arts} articles, {pars} paragraphs, {qs} questions, {ans} answers"
            + ("" if args.check else f" -> {path}")
        )
    if stale:
        print("out of date (rerun without --check): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
